"""Domain exceptions; the UI layer maps them to HTTP statuses."""

from __future__ import annotations

from collections.abc import Mapping

from metacrm.metadata.messages import Message

__all__ = ["ApprovalConflict", "AutomationLoop", "BadQuery", "EngineError", "ObjectNotFound",
           "PermissionDenied", "RecordLocked", "RecordNotFound", "SchemaChangeRefused", "StageRefused",
           "StaleVersion", "ValidationFailed"]


class EngineError(Exception):
    code = "error"
    hook: str | None = None  # the records service's hook that refused, if one did


class RecordNotFound(EngineError):
    code = "not_found"


class ObjectNotFound(EngineError):
    code = "not_found"


class PermissionDenied(EngineError):
    code = "forbidden"


class StaleVersion(EngineError):
    """The record changed since the caller read it; nothing was written."""

    code = "conflict"

    def __init__(self, message: str, current_version: int | None = None):
        super().__init__(message)
        self.current_version = current_version


class ValidationFailed(EngineError):
    """Values that cannot be saved, with a message per field."""

    code = "validation_failed"

    def __init__(self, fields: Mapping[str, str], message: str | None = None,
                 row: int | None = None):
        super().__init__(message or Message("some values are not valid"))
        self.fields = fields
        self.row = row


class BadQuery(EngineError):
    """A filter, sort or page request that names unknown fields or operators."""

    code = "bad_query"

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class SchemaChangeRefused(EngineError):
    """A schema change that could lose or corrupt data."""

    code = "schema_change_refused"

    def __init__(self, changes: list):
        self.changes = changes
        super().__init__("\n".join(c.describe() for c in changes))


class RecordLocked(EngineError):
    """The record is in an approval: nothing may change it until the approval ends."""

    code = "locked"


class StageRefused(EngineError):
    """A stage move whose requirements are not met; ``missing`` says each one."""

    code = "stage_refused"

    def __init__(self, message: str, missing: list):
        super().__init__(message)
        self.missing = missing


class ApprovalConflict(EngineError):
    """An approval action that no longer applies: decided already, not the user's turn,
    or the record is in another approval."""

    code = "approval_conflict"


class AutomationLoop(EngineError):
    """Automations that trigger each other without end: the write is rolled back."""

    code = "automation_loop"
