"""Time and events: the job runs (sys_job), reminder items marked handled
(sys_reminder_mark), announcements and their read marks; notifications get a dedupe key
(a job run twice notifies nobody twice) and longer kinds (from metadata); audit entries
name what made a change on the actor's behalf (``via``: an automation).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table("sys_announcement",
    sa.Column("id", ID, nullable=False),
    sa.Column("title", sa.String(length=200), nullable=False),
    sa.Column("body", sa.Text(), nullable=False),
    sa.Column("created_by", ID, nullable=True),
    sa.Column("created_at", UTC, nullable=False),
    sa.Column("expires_at", UTC, nullable=True),
    sa.PrimaryKeyConstraint("id")
    )
    op.create_index("ix_sys_announcement_created", "sys_announcement", ["created_at"], unique=False)
    op.create_table("sys_job",
    sa.Column("id", ID, nullable=False),
    sa.Column("name", sa.String(length=63), nullable=False),
    sa.Column("slot", sa.String(length=40), nullable=False),
    sa.Column("status", sa.String(length=10), nullable=False),
    sa.Column("params", JSON, nullable=False),
    sa.Column("attempt", sa.Integer(), nullable=False),
    sa.Column("queued_at", UTC, nullable=False),
    sa.Column("started_at", UTC, nullable=True),
    sa.Column("finished_at", UTC, nullable=True),
    sa.Column("counts", JSON, nullable=False),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("worker", sa.String(length=100), nullable=True),
    sa.Column("queued_by", ID, nullable=True),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("name", "slot", name="uq_sys_job_slot")
    )
    op.create_index("ix_sys_job_name", "sys_job", ["name", "id"], unique=False)
    op.create_index("ix_sys_job_status", "sys_job", ["status", "queued_at"], unique=False)
    op.create_table("sys_announcement_read",
    sa.Column("announcement_id", ID, nullable=False),
    sa.Column("user_id", ID, nullable=False),
    sa.Column("read_at", UTC, nullable=False),
    sa.ForeignKeyConstraint(["announcement_id"], ["sys_announcement.id"], ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["user_id"], ["sys_user.id"], ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("announcement_id", "user_id")
    )
    op.create_table("sys_reminder_mark",
    sa.Column("id", ID, nullable=False),
    sa.Column("user_id", ID, nullable=False),
    sa.Column("reminder", sa.String(length=127), nullable=False),
    sa.Column("record_id", ID, nullable=False),
    sa.Column("due_date", sa.Date(), nullable=True),
    sa.Column("due_at", UTC, nullable=True),
    sa.Column("marked_at", UTC, nullable=False),
    sa.Column("marked_by", ID, nullable=True),
    sa.ForeignKeyConstraint(["user_id"], ["sys_user.id"], ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("user_id", "reminder", "record_id", name="uq_sys_reminder_mark")
    )
    op.create_index("ix_sys_reminder_mark_record", "sys_reminder_mark", ["reminder", "record_id"], unique=False)
    op.add_column("sys_audit", sa.Column("via", sa.String(length=127), nullable=True))
    op.add_column("sys_notification", sa.Column("dedupe_key", sa.String(length=200), nullable=True))
    with op.batch_alter_table("sys_notification") as batch:  # SQLite copies the table
        batch.alter_column("kind", existing_type=sa.VARCHAR(length=30),
                           type_=sa.String(length=100), existing_nullable=False)
    op.create_index("uq_sys_notification_dedupe", "sys_notification", ["user_id", "dedupe_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_sys_notification_dedupe", table_name="sys_notification")
    with op.batch_alter_table("sys_notification") as batch:
        batch.alter_column("kind", existing_type=sa.String(length=100),
                           type_=sa.VARCHAR(length=30), existing_nullable=False)
    op.drop_column("sys_notification", "dedupe_key")
    op.drop_column("sys_audit", "via")
    op.drop_index("ix_sys_reminder_mark_record", table_name="sys_reminder_mark")
    op.drop_table("sys_reminder_mark")
    op.drop_table("sys_announcement_read")
    op.drop_index("ix_sys_job_status", table_name="sys_job")
    op.drop_index("ix_sys_job_name", table_name="sys_job")
    op.drop_table("sys_job")
    op.drop_index("ix_sys_announcement_created", table_name="sys_announcement")
    op.drop_table("sys_announcement")
