"""Indexes on sys_api_token by expiry and by user.

Issuing a token deletes the expired ones, and revoking a user's tokens or deleting a user
(whose tokens cascade) looks them up by user: without these, each scans the table.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_sys_api_token_expires", "sys_api_token", ["expires_at"], unique=False)
    op.create_index("ix_sys_api_token_user", "sys_api_token", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_sys_api_token_user", table_name="sys_api_token")
    op.drop_index("ix_sys_api_token_expires", table_name="sys_api_token")
