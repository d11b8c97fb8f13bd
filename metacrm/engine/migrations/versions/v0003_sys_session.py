"""sys_session: browser sessions the server can end.

A signed-in browser's cookie holds a random id whose hash is a row here; signing out
deletes the row, a password reset or disabling the user deletes all of theirs, so a copy
of an old cookie stops working. Users signed in before the upgrade sign in again.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sys_session",
        sa.Column("session_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("expires_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["sys_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("session_hash"),
    )
    op.create_index("ix_sys_session_user", "sys_session", ["user_id"], unique=False)
    op.create_index("ix_sys_session_expires", "sys_session", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_sys_session_expires", table_name="sys_session")
    op.drop_index("ix_sys_session_user", table_name="sys_session")
    op.drop_table("sys_session")
