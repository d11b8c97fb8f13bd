"""The system tables as they were when migrations began (metacrm 0.1).

Written out in full, not by ``create_all``: this revision stays what it is whatever
systables.py becomes later. The types are spelled here for the same reason (the DDL of
metacrm.engine.sqltypes' types at the time).

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "meta_document",
        sa.Column("id", ID, nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("doc_key", sa.String(length=100), nullable=False),
        sa.Column("layer", sa.String(length=10), nullable=False),
        sa.Column("template", sa.String(length=63), nullable=True),
        sa.Column("content", JSON, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "doc_key", "layer", name="uq_meta_document"),
    )
    op.create_table(
        "meta_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "meta_template",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("installed_at", UTC, nullable=False),
        sa.Column("manifest", JSON, nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "meta_version",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("actor", sa.String(length=150), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("snapshot", JSON, nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_table(
        "sys_approval",
        sa.Column("id", ID, nullable=False),
        sa.Column("flow", sa.String(length=63), nullable=False),
        sa.Column("object", sa.String(length=63), nullable=False),
        sa.Column("record_id", ID, nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("trigger", sa.String(length=12), nullable=False),
        sa.Column("stage_from", sa.String(length=63), nullable=True),
        sa.Column("stage_to", sa.String(length=63), nullable=True),
        sa.Column("submitter_id", ID, nullable=False),
        sa.Column("submitted_at", UTC, nullable=False),
        sa.Column("finished_at", UTC, nullable=True),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("chosen", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sys_approval_record", "sys_approval", ["object", "record_id", "id"],
                    unique=False)
    op.create_index("ix_sys_approval_submitter", "sys_approval",
                    ["submitter_id", "status", "submitted_at"], unique=False)
    op.create_index("uq_sys_approval_pending", "sys_approval", ["object", "record_id"],
                    unique=True, sqlite_where=sa.text("status = 'pending'"),
                    postgresql_where=sa.text("status = 'pending'"))
    op.create_table(
        "sys_attachment",
        sa.Column("id", ID, nullable=False),
        sa.Column("object", sa.String(length=63), nullable=False),
        sa.Column("record_id", ID, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=150), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_by", ID, nullable=True),
        sa.Column("uploaded_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sys_attachment_record", "sys_attachment", ["object", "record_id", "id"],
                    unique=False)
    op.create_table(
        "sys_audit",
        sa.Column("id", ID, nullable=False),
        sa.Column("object", sa.String(length=63), nullable=False),
        sa.Column("record_id", ID, nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("actor_id", ID, nullable=True),
        sa.Column("at", UTC, nullable=False),
        sa.Column("changes", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sys_audit_record", "sys_audit", ["object", "record_id", "id"],
                    unique=False)
    op.create_table(
        "sys_department",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("parent_id", ID, nullable=True),
        sa.Column("head_id", ID, nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["parent_id"], ["sys_department.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sys_department_parent", "sys_department", ["parent_id", "id"],
                    unique=False)
    op.create_table(
        "sys_dimension",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("label", JSON, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "sys_login_failure",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "sys_role",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("label", JSON, nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("is_super", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "sys_sequence",
        sa.Column("name", sa.String(length=140), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "sys_stage_check",
        sa.Column("object", sa.String(length=63), nullable=False),
        sa.Column("record_id", ID, nullable=False),
        sa.Column("stage", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("item", sa.String(length=63), nullable=False),
        sa.Column("done_by", ID, nullable=True),
        sa.Column("done_at", UTC, nullable=False),
        sa.Column("attachment_id", ID, nullable=True),
        sa.PrimaryKeyConstraint("object", "record_id", "stage", "kind", "item"),
    )
    op.create_table(
        "sys_stage_history",
        sa.Column("id", ID, nullable=False),
        sa.Column("object", sa.String(length=63), nullable=False),
        sa.Column("record_id", ID, nullable=False),
        sa.Column("process", sa.String(length=63), nullable=False),
        sa.Column("stage", sa.String(length=63), nullable=False),
        sa.Column("from_stage", sa.String(length=63), nullable=True),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("entered_at", UTC, nullable=False),
        sa.Column("entered_by", ID, nullable=True),
        sa.Column("left_at", UTC, nullable=True),
        sa.Column("left_by", ID, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sys_stage_history_record", "sys_stage_history",
                    ["object", "record_id", "id"], unique=False)
    op.create_index("ix_sys_stage_history_stage", "sys_stage_history",
                    ["process", "stage", "entered_at"], unique=False)
    op.create_table(
        "sys_approval_event",
        sa.Column("id", ID, nullable=False),
        sa.Column("approval_id", ID, nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("actor_id", ID, nullable=True),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("details", JSON, nullable=False),
        sa.ForeignKeyConstraint(["approval_id"], ["sys_approval.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sys_approval_event_approval", "sys_approval_event", ["approval_id", "id"],
                    unique=False)
    op.create_table(
        "sys_approval_task",
        sa.Column("id", ID, nullable=False),
        sa.Column("approval_id", ID, nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("waits_for", ID, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("decided_at", UTC, nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["approval_id"], ["sys_approval.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sys_approval_task_approval", "sys_approval_task",
                    ["approval_id", "round", "step"], unique=False)
    op.create_index("ix_sys_approval_task_user", "sys_approval_task",
                    ["user_id", "status", "created_at"], unique=False)
    op.create_table(
        "sys_dimension_node",
        sa.Column("id", ID, nullable=False),
        sa.Column("dimension", sa.String(length=63), nullable=False),
        sa.Column("parent_id", ID, nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["dimension"], ["sys_dimension.name"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["parent_id"], ["sys_dimension_node.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sys_dimension_node_dimension", "sys_dimension_node",
                    ["dimension", "parent_id"], unique=False)
    op.create_index("ix_sys_dimension_node_parent", "sys_dimension_node", ["parent_id", "id"],
                    unique=False)
    op.create_table(
        "sys_role_field",
        sa.Column("role_id", ID, nullable=False),
        sa.Column("object", sa.String(length=63), nullable=False),
        sa.Column("field", sa.String(length=63), nullable=False),
        sa.Column("access", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(["role_id"], ["sys_role.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("role_id", "object", "field"),
    )
    op.create_table(
        "sys_role_grant",
        sa.Column("role_id", ID, nullable=False),
        sa.Column("object", sa.String(length=63), nullable=False),
        sa.Column("operation", sa.String(length=20), nullable=False),
        sa.Column("scope", sa.String(length=30), nullable=False),
        sa.ForeignKeyConstraint(["role_id"], ["sys_role.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("role_id", "object", "operation"),
    )
    op.create_table(
        "sys_user",
        sa.Column("id", ID, nullable=False),
        sa.Column("username", sa.String(length=150), nullable=False),
        sa.Column("display_name", sa.String(length=150), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("language", sa.String(length=5), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("department_id", ID, nullable=True),
        sa.Column("superior_id", ID, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["department_id"], ["sys_department.id"]),
        sa.ForeignKeyConstraint(["superior_id"], ["sys_user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
    )
    op.create_index("ix_sys_user_department", "sys_user", ["department_id", "id"],
                    unique=False)
    op.create_index("ix_sys_user_superior", "sys_user", ["superior_id", "id"],
                    unique=False)
    op.create_table(
        "sys_api_token",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("expires_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["sys_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_table(
        "sys_notification",
        sa.Column("id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("object", sa.String(length=63), nullable=True),
        sa.Column("record_id", ID, nullable=True),
        sa.Column("approval_id", ID, nullable=True),
        sa.Column("actor_id", ID, nullable=True),
        sa.Column("params", JSON, nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("read_at", UTC, nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["sys_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sys_notification_user", "sys_notification", ["user_id", "read_at", "id"],
                    unique=False)
    op.create_table(
        "sys_team_member",
        sa.Column("object", sa.String(length=63), nullable=False),
        sa.Column("record_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("access", sa.String(length=10), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("added_by", ID, nullable=True),
        sa.Column("added_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["sys_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("object", "record_id", "user_id"),
    )
    op.create_index("ix_sys_team_member_user", "sys_team_member",
                    ["user_id", "object", "record_id", "access", "expires_on"], unique=False)
    op.create_table(
        "sys_todo",
        sa.Column("id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("object", sa.String(length=63), nullable=False),
        sa.Column("record_id", ID, nullable=False),
        sa.Column("stage", sa.String(length=63), nullable=True),
        sa.Column("item", sa.String(length=63), nullable=True),
        sa.Column("params", JSON, nullable=False),
        sa.Column("due_at", UTC, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("handled_at", UTC, nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["sys_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sys_todo_record", "sys_todo", ["object", "record_id", "stage"],
                    unique=False)
    op.create_index("ix_sys_todo_user", "sys_todo", ["user_id", "handled_at", "due_at"],
                    unique=False)
    op.create_table(
        "sys_user_dimension",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("node_id", ID, nullable=False),
        sa.ForeignKeyConstraint(["node_id"], ["sys_dimension_node.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["sys_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "node_id"),
    )
    op.create_table(
        "sys_user_role",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("role_id", ID, nullable=False),
        sa.ForeignKeyConstraint(["role_id"], ["sys_role.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["sys_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "role_id"),
    )
    op.create_index("ix_sys_user_role_role", "sys_user_role", ["role_id", "user_id"],
                    unique=False)
    op.create_table(
        "sys_view",
        sa.Column("id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("object", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("builtin", sa.Boolean(), nullable=False),
        sa.Column("filter", JSON, nullable=True),
        sa.Column("columns", JSON, nullable=True),
        sa.Column("sort", sa.String(length=400), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["sys_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sys_view_user_object", "sys_view", ["user_id", "object", "position"],
                    unique=False)


def downgrade() -> None:
    op.drop_table("sys_view")
    op.drop_table("sys_user_role")
    op.drop_table("sys_user_dimension")
    op.drop_table("sys_todo")
    op.drop_table("sys_team_member")
    op.drop_table("sys_notification")
    op.drop_table("sys_api_token")
    op.drop_table("sys_user")
    op.drop_table("sys_role_grant")
    op.drop_table("sys_role_field")
    op.drop_table("sys_dimension_node")
    op.drop_table("sys_approval_task")
    op.drop_table("sys_approval_event")
    op.drop_table("sys_stage_history")
    op.drop_table("sys_stage_check")
    op.drop_table("sys_sequence")
    op.drop_table("sys_role")
    op.drop_table("sys_login_failure")
    op.drop_table("sys_dimension")
    op.drop_table("sys_department")
    op.drop_table("sys_audit")
    op.drop_table("sys_attachment")
    op.drop_table("sys_approval")
    op.drop_table("meta_version")
    op.drop_table("meta_template")
    op.drop_table("meta_state")
    op.drop_table("meta_document")
