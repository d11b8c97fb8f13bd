"""Tables the platform itself needs, independent of any object definition."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from metacrm.engine.sqltypes import ID, JSON_TYPE, UTCDateTime

__all__ = ["meta_document", "meta_state", "meta_template", "meta_version", "sys_announcement",
           "sys_announcement_read", "sys_api_token", "sys_approval", "sys_approval_event",
           "sys_approval_task", "sys_attachment", "sys_audit", "sys_department",
           "sys_dimension", "sys_dimension_node", "sys_job", "sys_login_failure",
           "sys_notification", "sys_reminder_mark", "sys_role", "sys_role_field",
           "sys_role_grant", "sys_sequence", "sys_session", "sys_stage_check",
           "sys_stage_history", "sys_team_member", "sys_todo", "sys_user",
           "sys_user_dimension", "sys_user_role", "sys_view", "system_metadata"]

system_metadata = MetaData()

meta_state = Table(
    "meta_state", system_metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("schema_version", Integer, nullable=False),  # last version applied to tables
    Column("instance_id", String(32), nullable=False),  # names this database in Redis keys
)

meta_document = Table(
    "meta_document", system_metadata,
    Column("id", ID, primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("doc_key", String(100), nullable=False),
    Column("layer", String(10), nullable=False),  # base: as the template ships; overlay: local
    Column("template", String(63)),
    Column("content", JSON_TYPE, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("kind", "doc_key", "layer", name="uq_meta_document"),
)

meta_version = Table(
    "meta_version", system_metadata,
    Column("version", Integer, primary_key=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("actor", String(150), nullable=False),
    Column("summary", Text, nullable=False),
    Column("snapshot", JSON_TYPE, nullable=False),  # every document, both layers
)

meta_template = Table(
    "meta_template", system_metadata,
    Column("name", String(63), primary_key=True),
    Column("version", String(40), nullable=False),
    Column("installed_at", UTCDateTime(), nullable=False),
    Column("manifest", JSON_TYPE, nullable=False),
)

sys_user = Table(
    "sys_user", system_metadata,
    Column("id", ID, primary_key=True),
    Column("username", String(150), nullable=False, unique=True),
    Column("display_name", String(150), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("language", String(5), nullable=False, default="zh"),
    Column("email", String(254)),
    Column("department_id", ID, ForeignKey("sys_department.id")),
    Column("superior_id", ID, ForeignKey("sys_user.id")),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_sys_user_superior", "superior_id", "id"),
    Index("ix_sys_user_department", "department_id", "id"),
)

# -- organisation and permissions --------------------------------------------------------
sys_department = Table(
    "sys_department", system_metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("parent_id", ID, ForeignKey("sys_department.id")),  # NULL only for the root
    Column("head_id", ID),  # the department head, a user
    Column("position", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_sys_department_parent", "parent_id", "id"),
)

sys_role = Table(
    "sys_role", system_metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(63), nullable=False, unique=True),  # stable key, used by flows
    Column("label", JSON_TYPE, nullable=False),  # {en, zh}
    Column("description", Text),
    Column("is_super", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

sys_user_role = Table(
    "sys_user_role", system_metadata,
    Column("user_id", ID, ForeignKey("sys_user.id", ondelete="CASCADE"), primary_key=True),
    Column("role_id", ID, ForeignKey("sys_role.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_sys_user_role_role", "role_id", "user_id"),
)

sys_role_grant = Table(
    "sys_role_grant", system_metadata,
    Column("role_id", ID, ForeignKey("sys_role.id", ondelete="CASCADE"), primary_key=True),
    Column("object", String(63), primary_key=True),  # an object name, or "*" for the rest
    Column("operation", String(20), primary_key=True),
    Column("scope", String(30), nullable=False),
)

sys_role_field = Table(
    "sys_role_field", system_metadata,
    Column("role_id", ID, ForeignKey("sys_role.id", ondelete="CASCADE"), primary_key=True),
    Column("object", String(63), primary_key=True),
    Column("field", String(63), primary_key=True),
    Column("access", String(20), nullable=False),  # hidden | read_only (editable: no row)
)

sys_team_member = Table(
    "sys_team_member", system_metadata,
    Column("object", String(63), primary_key=True),
    Column("record_id", ID, primary_key=True),
    Column("user_id", ID, ForeignKey("sys_user.id", ondelete="CASCADE"), primary_key=True),
    Column("access", String(10), nullable=False),  # read | write
    Column("expires_on", Date),  # the last day of membership; NULL: no end
    Column("added_by", ID),
    Column("added_at", UTCDateTime(), nullable=False),
    # The scope's subquery reads only this index: the user's records of one object.
    Index("ix_sys_team_member_user", "user_id", "object", "record_id", "access", "expires_on"),
)

sys_dimension = Table(
    "sys_dimension", system_metadata,
    Column("name", String(63), primary_key=True),
    Column("label", JSON_TYPE, nullable=False),
    Column("position", Integer, nullable=False, default=0),
)

sys_dimension_node = Table(
    "sys_dimension_node", system_metadata,
    Column("id", ID, primary_key=True),
    Column("dimension", String(63), ForeignKey("sys_dimension.name", ondelete="CASCADE"),
           nullable=False),
    Column("parent_id", ID, ForeignKey("sys_dimension_node.id")),  # NULL: the root (全部)
    Column("name", String(100), nullable=False),
    Column("position", Integer, nullable=False, default=0),
    Index("ix_sys_dimension_node_parent", "parent_id", "id"),
    Index("ix_sys_dimension_node_dimension", "dimension", "parent_id"),
)

sys_user_dimension = Table(
    "sys_user_dimension", system_metadata,
    Column("user_id", ID, ForeignKey("sys_user.id", ondelete="CASCADE"), primary_key=True),
    Column("node_id", ID, ForeignKey("sys_dimension_node.id", ondelete="CASCADE"),
           primary_key=True),
)

sys_api_token = Table(
    "sys_api_token", system_metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", ID, ForeignKey("sys_user.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    # Issuing a token purges the expired ones; revoking a user's tokens (and deleting the
    # user, whose tokens cascade) finds them by user: neither scans the table.
    Index("ix_sys_api_token_expires", "expires_at"),
    Index("ix_sys_api_token_user", "user_id"),
)

# A signed-in browser: the cookie holds the random id, the table its hash. Signing out
# deletes the row, so a copied cookie stops working; a password change deletes them all.
sys_session = Table(
    "sys_session", system_metadata,
    Column("session_hash", String(64), primary_key=True),
    Column("user_id", ID, ForeignKey("sys_user.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Index("ix_sys_session_user", "user_id"),
    Index("ix_sys_session_expires", "expires_at"),  # signing in purges the expired ones
)

sys_audit = Table(
    "sys_audit", system_metadata,
    Column("id", ID, primary_key=True),
    Column("object", String(63), nullable=False),
    Column("record_id", ID, nullable=False),
    Column("action", String(20), nullable=False),
    Column("actor_id", ID),
    Column("at", UTCDateTime(), nullable=False),
    Column("changes", JSON_TYPE, nullable=False),  # {field: [before, after]}
    # What made the change on the actor's behalf: an automation ("automation:<name>").
    Column("via", String(127)),
    Index("ix_sys_audit_record", "object", "record_id", "id"),
)

sys_sequence = Table(
    "sys_sequence", system_metadata,
    Column("name", String(140), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

sys_view = Table(
    "sys_view", system_metadata,
    Column("id", ID, primary_key=True),
    Column("user_id", ID, ForeignKey("sys_user.id", ondelete="CASCADE"), nullable=False),
    Column("object", String(63), nullable=False),
    Column("name", String(60), nullable=False),  # a built-in's key, or the user's own name
    Column("builtin", Boolean, nullable=False, default=False),
    Column("filter", JSON_TYPE),
    Column("columns", JSON_TYPE),
    Column("sort", String(400)),
    Column("position", Integer, nullable=False, default=0),
    Column("hidden", Boolean, nullable=False, default=False),
    Column("is_default", Boolean, nullable=False, default=False),
    Index("ix_sys_view_user_object", "user_id", "object", "position"),
)

sys_login_failure = Table(
    "sys_login_failure", system_metadata,
    Column("key", String(200), primary_key=True),  # username and client address
    Column("failures", Integer, nullable=False),
    Column("last_at", UTCDateTime(), nullable=False),
)

# -- stage processes, approvals, notifications, todos ----------------------------------------
sys_stage_history = Table(
    "sys_stage_history", system_metadata,
    Column("id", ID, primary_key=True),
    Column("object", String(63), nullable=False),
    Column("record_id", ID, nullable=False),
    Column("process", String(63), nullable=False),
    Column("stage", String(63), nullable=False),
    Column("from_stage", String(63)),  # NULL: the record started here
    Column("direction", String(10), nullable=False),  # start | forward | back
    Column("entered_at", UTCDateTime(), nullable=False),
    Column("entered_by", ID),
    Column("left_at", UTCDateTime()),  # NULL: the record is still in the stage
    Column("left_by", ID),
    Index("ix_sys_stage_history_record", "object", "record_id", "id"),
    # Funnel and stage-duration figures read a process's entries by stage and time.
    Index("ix_sys_stage_history_stage", "process", "stage", "entered_at"),
)

sys_stage_check = Table(  # stage work ticked and key events done, per record and stage
    "sys_stage_check", system_metadata,
    Column("object", String(63), primary_key=True),
    Column("record_id", ID, primary_key=True),
    Column("stage", String(63), primary_key=True),
    Column("kind", String(10), primary_key=True),  # work | event
    Column("item", String(63), primary_key=True),
    Column("done_by", ID),
    Column("done_at", UTCDateTime(), nullable=False),
    Column("attachment_id", ID),
)

sys_attachment = Table(
    "sys_attachment", system_metadata,
    Column("id", ID, primary_key=True),
    Column("object", String(63), nullable=False),
    Column("record_id", ID, nullable=False),
    Column("name", String(255), nullable=False),
    Column("content_type", String(150), nullable=False),
    Column("size", Integer, nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("uploaded_by", ID),
    Column("uploaded_at", UTCDateTime(), nullable=False),
    Index("ix_sys_attachment_record", "object", "record_id", "id"),
)

sys_approval = Table(
    "sys_approval", system_metadata,
    Column("id", ID, primary_key=True),
    Column("flow", String(63), nullable=False),
    Column("object", String(63), nullable=False),
    Column("record_id", ID, nullable=False),
    Column("status", String(12), nullable=False),  # pending | approved | rejected | withdrawn
    Column("trigger", String(12), nullable=False),  # submit | stage | field_change
    Column("stage_from", String(63)),  # a stage approval: the move it waits to make
    Column("stage_to", String(63)),
    Column("submitter_id", ID, nullable=False),
    Column("submitted_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
    Column("step", Integer, nullable=False),  # the current step's index
    Column("round", Integer, nullable=False),  # 1, then one more at each resubmission
    Column("chosen", JSON_TYPE, nullable=False),  # step name -> user ids the submitter picked
    Index("ix_sys_approval_record", "object", "record_id", "id"),
    Index("ix_sys_approval_submitter", "submitter_id", "status", "submitted_at"),
)
# A record is in at most one approval at a time: the database refuses a second.
Index("uq_sys_approval_pending", sys_approval.c.object, sys_approval.c.record_id, unique=True,
      sqlite_where=sys_approval.c.status == "pending",
      postgresql_where=sys_approval.c.status == "pending")

sys_approval_task = Table(
    "sys_approval_task", system_metadata,
    Column("id", ID, primary_key=True),
    Column("approval_id", ID, ForeignKey("sys_approval.id", ondelete="CASCADE"),
           nullable=False),
    Column("round", Integer, nullable=False),
    Column("step", Integer, nullable=False),
    Column("user_id", ID, nullable=False),
    # active | waiting | approved | rejected | handed_over | cancelled
    Column("status", String(12), nullable=False),
    # approver | chain | handed_over | added_before | added_after
    Column("kind", String(12), nullable=False),
    Column("waits_for", ID),  # a waiting task becomes active when this one is approved
    Column("created_at", UTCDateTime(), nullable=False),
    Column("decided_at", UTCDateTime()),
    Column("comment", Text),
    Index("ix_sys_approval_task_user", "user_id", "status", "created_at"),
    Index("ix_sys_approval_task_approval", "approval_id", "round", "step"),
)

sys_approval_event = Table(  # the approval timeline
    "sys_approval_event", system_metadata,
    Column("id", ID, primary_key=True),
    Column("approval_id", ID, ForeignKey("sys_approval.id", ondelete="CASCADE"),
           nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor_id", ID),
    Column("action", String(20), nullable=False),
    Column("round", Integer, nullable=False),
    Column("step", Integer),
    Column("comment", Text),
    Column("details", JSON_TYPE, nullable=False),
    Index("ix_sys_approval_event_approval", "approval_id", "id"),
)

sys_notification = Table(
    "sys_notification", system_metadata,
    Column("id", ID, primary_key=True),
    Column("user_id", ID, ForeignKey("sys_user.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(100), nullable=False),
    Column("object", String(63)),
    Column("record_id", ID),
    Column("approval_id", ID),
    Column("actor_id", ID),
    Column("params", JSON_TYPE, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("read_at", UTCDateTime()),
    # Set by jobs: a second run (or a run after a kill -9) notifies nobody twice.
    Column("dedupe_key", String(200)),
    Index("ix_sys_notification_user", "user_id", "read_at", "id"),
    Index("uq_sys_notification_dedupe", "user_id", "dedupe_key", unique=True),
)

sys_todo = Table(
    "sys_todo", system_metadata,
    Column("id", ID, primary_key=True),
    Column("user_id", ID, ForeignKey("sys_user.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(20), nullable=False),  # assigned | stage_work
    Column("object", String(63), nullable=False),
    Column("record_id", ID, nullable=False),
    Column("stage", String(63)),
    Column("item", String(63)),
    Column("params", JSON_TYPE, nullable=False),
    Column("due_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("handled_at", UTCDateTime()),
    Index("ix_sys_todo_user", "user_id", "handled_at", "due_at"),
    Index("ix_sys_todo_record", "object", "record_id", "stage"),
)


sys_job = Table(  # one run of a job: scheduled for a slot, or started by an admin
    "sys_job", system_metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(63), nullable=False),
    # The run's slot ("2026-12-06" for a nightly job): one run per job and slot, so any
    # number of schedulers on any number of machines start each run once.
    Column("slot", String(40), nullable=False),
    Column("status", String(10), nullable=False),  # queued | running | done | failed
    Column("params", JSON_TYPE, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("queued_at", UTCDateTime(), nullable=False),
    Column("started_at", UTCDateTime()),
    Column("finished_at", UTCDateTime()),
    Column("counts", JSON_TYPE, nullable=False),
    Column("error", Text),
    Column("worker", String(100)),
    Column("queued_by", ID),  # an admin's retry or run now; None: the scheduler
    UniqueConstraint("name", "slot", name="uq_sys_job_slot"),
    Index("ix_sys_job_status", "status", "queued_at"),
    Index("ix_sys_job_name", "name", "id"),
)

sys_reminder_mark = Table(  # 标记为已处理: a reminder item handled, the record unchanged
    "sys_reminder_mark", system_metadata,
    Column("id", ID, primary_key=True),
    Column("user_id", ID, ForeignKey("sys_user.id", ondelete="CASCADE"), nullable=False),
    Column("reminder", String(127), nullable=False),  # "<object>.<reminder name>"
    Column("record_id", ID, nullable=False),
    # The record's due value when it was marked (the column of the rule's field type):
    # a new due date brings the item back.
    Column("due_date", Date),
    Column("due_at", UTCDateTime()),
    Column("marked_at", UTCDateTime(), nullable=False),
    Column("marked_by", ID),  # the user, or his manager acting on his todos
    UniqueConstraint("user_id", "reminder", "record_id", name="uq_sys_reminder_mark"),
    Index("ix_sys_reminder_mark_record", "reminder", "record_id"),
)

sys_announcement = Table(  # 公告: admins tell every user
    "sys_announcement", system_metadata,
    Column("id", ID, primary_key=True),
    Column("title", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_by", ID),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime()),
    Index("ix_sys_announcement_created", "created_at"),
)

sys_announcement_read = Table(
    "sys_announcement_read", system_metadata,
    Column("announcement_id", ID, ForeignKey("sys_announcement.id", ondelete="CASCADE"),
           primary_key=True),
    Column("user_id", ID, ForeignKey("sys_user.id", ondelete="CASCADE"), primary_key=True),
    Column("read_at", UTCDateTime(), nullable=False),
)
