"""An OpenAPI 3.1 document generated from the live metadata: one schema per object."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from metacrm import __version__
from metacrm.engine.schema.registry import Registry
from metacrm.metadata.model import FieldDef, ObjectDef

ERROR = {"$ref": "#/components/schemas/Error"}


def _field_schema(f: FieldDef, owned: Collection[str] = ()) -> dict[str, Any]:
    schema = dict(f.kind.value_schema(f))
    schema["title"] = f.label.en
    schema["description"] = f"{f.label.zh}. " + schema.get("description", f"{f.type} field")
    if f.system and f.name not in ("owner", "business_type") or f.name in owned:
        schema["readOnly"] = True
    return {"anyOf": [schema, {"type": "null"}]} if not f.required else schema


def _schema_name(obj: ObjectDef | str) -> str:
    name = obj if isinstance(obj, str) else obj.name
    return "".join(part.capitalize() for part in name.split("_"))


def object_schemas(obj: ObjectDef, owned: Collection[str] = (), chosen: Collection[str] = (),
                   hidden: Collection[str] = frozenset()) -> dict[str, Any]:
    """``owned``: the fields only the engine writes (read-only here); ``chosen``: those
    of them a new record may still name (a stage field whose process has start stages);
    ``hidden``: the fields the caller may not see (left out)."""
    name = _schema_name(obj)
    fields = {n: f for n, f in obj.queryable.items() if n not in hidden}
    writable = {n: f for n, f in fields.items()
                if (f.writable or n in ("owner", "business_type")) and n not in owned}
    on_create = {**writable, **{n: fields[n] for n in chosen if n in fields}}
    lines = {f.name: _lines_schema(f, "") for f in obj.line_fields if f.name not in hidden}
    line_inputs = {f.name: _lines_schema(f, "Line") for f in obj.line_fields
                   if f.name not in hidden}
    out = {
        name: {"type": "object", "title": obj.label.en, "description": obj.label.zh,
               "properties": {**{n: _field_schema(f, owned) for n, f in fields.items()},
                              **lines}},
        f"{name}Input": {
            "type": "object", "additionalProperties": False,
            "required": [n for n, f in writable.items() if f.required],
            "properties": {**{n: _field_schema(f) for n, f in on_create.items()},
                           **line_inputs}},
        f"{name}Patch": {
            "type": "object", "additionalProperties": False, "required": ["version"],
            "properties": {"version": {"type": "integer"},
                           **{n: _field_schema(f) for n, f in writable.items()},
                           **line_inputs}},
        f"{name}Page": {
            "type": "object", "required": ["items", "total", "page", "page_size"],
            "properties": {"items": {"type": "array",
                                     "items": {"$ref": f"#/components/schemas/{name}"}},
                           "total": {"type": ["integer", "null"]},
                           "total_exact": {"type": "boolean"}, "page": {"type": "integer"},
                           "page_size": {"type": "integer"},
                           "next_cursor": {"type": ["string", "null"]}}},
    }
    if obj.master_field is not None:  # a line as written inside its parent's body
        out[f"{name}Line"] = {
            "type": "object", "additionalProperties": False,
            "description": "a line: with id it is updated, without it is created; lines "
                           "left out of an update are deleted",
            "properties": {"id": {"type": "integer"},
                           **{n: _field_schema(f) for n, f in writable.items()
                              if n != obj.master_field.name}}}
    return out


def _lines_schema(f: FieldDef, suffix: str) -> dict[str, Any]:
    return {"type": "array", "title": f.label.en, "description": f.label.zh,
            "items": {"$ref": f"#/components/schemas/{_schema_name(f.target)}{suffix}"}}


def _json(ref: str) -> dict:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def _errors(*codes: int) -> dict:
    text = {400: "Bad request or query", 401: "Not signed in", 403: "Not allowed",
            404: "Not found", 409: "Conflict: a stale version, a record locked by its "
            "approval, or an approval that no longer waits for this action",
            422: "Invalid values",
            429: "Too many failed attempts: wait the seconds of the Retry-After header"}
    return {str(c): {"description": text[c], "content": {"application/json": {"schema": ERROR}}}
            for c in codes}


LIST_PARAMETERS = [
    {"name": "filter", "in": "query", "schema": {"type": "string"},
     "description": 'JSON: [field, op, value], a list of them, or {"and"|"or": [...]}'},
    {"name": "sort", "in": "query", "schema": {"type": "string"},
     "description": "fields separated by commas, '-' for descending, e.g. -amount,name"},
    {"name": "q", "in": "query", "schema": {"type": "string"},
     "description": "keyword search over the object's search fields"},
    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
    {"name": "page_size", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                      "maximum": 200}},
    {"name": "cursor", "in": "query", "schema": {"type": "string"},
     "description": "next_cursor of the previous page, for fast deep paging"},
    {"name": "fields", "in": "query", "schema": {"type": "string"},
     "description": "only these fields, separated by commas"},
    {"name": "count", "in": "query",
     "schema": {"enum": ["capped", "exact", "estimate", "none"]}},
    {"name": "titles", "in": "query", "schema": {"type": "boolean"},
     "description": "add the titles of looked-up records as _titles"},
]


def object_paths(obj: ObjectDef) -> dict[str, Any]:
    name = _schema_name(obj)
    base = f"/objects/{obj.name}/records"
    record_id = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}]
    tag = [obj.name]
    return {
        base: {
            "get": {"tags": tag, "summary": f"List {obj.label.en} records",
                    "parameters": LIST_PARAMETERS,
                    "responses": {"200": {"description": "A page", **_json(f"{name}Page")},
                                  **_errors(400, 401, 404)}},
            "post": {"tags": tag, "summary": f"Create a {obj.label.en}",
                     "requestBody": {"required": True, **_json(f"{name}Input")},
                     "responses": {"201": {"description": "Created", **_json(name)},
                                   **_errors(400, 401, 404, 422)}},
        },
        base + "/{id}": {
            "parameters": record_id,
            "get": {"tags": tag, "summary": f"Read a {obj.label.en}",
                    "responses": {"200": {"description": "The record", **_json(name)},
                                  **_errors(401, 404)}},
            "patch": {"tags": tag, "summary": f"Change a {obj.label.en}",
                      "requestBody": {"required": True, **_json(f"{name}Patch")},
                      "responses": {"200": {"description": "Changed", **_json(name)},
                                    **_errors(400, 401, 404, 409, 422)}},
            "delete": {"tags": tag, "summary": "Move to the recycle bin",
                       "responses": {"204": {"description": "Deleted"},
                                     **_errors(401, 404, 409)}},
        },
        base + "/{id}/restore": {
            "parameters": record_id,
            "post": {"tags": tag, "summary": "Restore from the recycle bin",
                     "responses": {"200": {"description": "Restored", **_json(name)},
                                   **_errors(401, 404)}},
        },
        base + "/{id}/history": {
            "parameters": record_id,
            "get": {"tags": tag, "summary": "Change history",
                    "responses": {"200": {"description": "Audit entries, newest first",
                                          **_json("History")}, **_errors(401, 404)}},
        },
        base + "/{id}/permissions": {
            "parameters": record_id,
            "get": {"tags": tag, "summary": "What the caller may do with this record",
                    "responses": {"200": {"description": "A flag per operation",
                                          **_json("Operations")}, **_errors(401, 404)}},
        },
        f"/objects/{obj.name}/transfer": {
            "post": {"tags": tag, "summary": "Give records a new owner (转移)",
                     "requestBody": {"required": True, **_json("TransferInput")},
                     "responses": {"200": {"description": "The records moved, per object",
                                           **_json("TransferResult")},
                                   **_errors(401, 403, 404, 422)}},
        },
        f"/objects/{obj.name}/export": {
            "get": {"tags": tag, "summary": "The records the caller may export, as CSV",
                    "parameters": LIST_PARAMETERS,
                    "responses": {"200": {"description": "CSV with a header row",
                                          "content": {"text/csv": {"schema": {
                                              "type": "string"}}}},
                                  **_errors(400, 401, 403)}},
        },
        f"/objects/{obj.name}/lookup": {
            "get": {"tags": tag, "summary": "Type-ahead candidates for a lookup to this object",
                    "parameters": [
                        {"name": "q", "in": "query", "schema": {"type": "string"}},
                        {"name": "field", "in": "query", "schema": {"type": "string"},
                         "description": "the lookup field (object.field) whose filter applies"}],
                    "responses": {"200": {"description": "Up to 10 records: id and title",
                                          "content": {"application/json": {"schema": {
                                              "type": "array", "items": {"type": "object"}}}}},
                                  **_errors(400, 401, 403, 404)}},
        },
        **(team_paths(obj, base, record_id, tag) if "team" in obj.features else {}),
    }


def team_paths(obj: ObjectDef, base: str, record_id: list, tag: list) -> dict[str, Any]:
    user_id = {"name": "user_id", "in": "path", "required": True, "schema": {"type": "integer"}}
    return {
        base + "/{id}/team": {
            "parameters": record_id,
            "get": {"tags": tag, "summary": "Team members (团队成员), the owner first",
                    "responses": {"200": {"description": "Members", **_json("TeamMembers")},
                                  **_errors(401, 404)}},
            "post": {"tags": tag, "summary": "Add or change a team member",
                     "requestBody": {"required": True, **_json("TeamMemberInput")},
                     "responses": {"201": {"description": "Members", **_json("TeamMembers")},
                                   **_errors(401, 403, 404, 422)}},
        },
        base + "/{id}/team/{user_id}": {
            "parameters": [*record_id, user_id],
            "delete": {"tags": tag, "summary": "Remove a member (or leave the team)",
                       "responses": {"204": {"description": "Removed"},
                                     **_errors(401, 403, 404)}},
        },
    }


SHARING_SCHEMAS: dict[str, Any] = {
    "Operations": {"type": "object", "additionalProperties": {"type": "boolean"}},
    "TransferInput": {"type": "object", "required": ["ids", "owner"], "properties": {
        "ids": {"type": "array", "items": {"type": "integer"}},
        "owner": {"type": "integer", "description": "the new owner's user id"},
        "old_owner": {"enum": ["remove", "read", "write"],
                      "description": "remove the old owner, or keep them as a team member"},
        "cascade": {"type": "array", "items": {"type": "string"},
                    "description": "related lists to move too, as object.field"}}},
    "TransferResult": {"type": "object", "properties": {
        "moved": {"type": "object", "additionalProperties": {
            "type": "array", "items": {"type": "integer"}}},
        "total": {"type": "integer"}}},
    "TeamMemberInput": {"type": "object", "required": ["user_id"], "properties": {
        "user_id": {"type": "integer"}, "access": {"enum": ["read", "write"]},
        "expires_on": {"type": ["string", "null"], "format": "date"}}},
    "TeamMembers": {"type": "object", "properties": {"items": {"type": "array", "items": {
        "type": "object", "properties": {
            "user_id": {"type": "integer"}, "display_name": {"type": "string"},
            "access": {"enum": ["owner", "read", "write"]},
            "expires_on": {"type": ["string", "null"], "format": "date"},
            "is_owner": {"type": "boolean"}, "expired": {"type": "boolean"}}}}}},
}


# -- stage paths, approvals, todos and notifications (metacrm.ui.api.flows) ----------------
def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _array(items: dict) -> dict[str, Any]:
    return {"type": "array", "items": items}


def _nullable(schema: dict) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


STRING, INTEGER, NUMBER, BOOLEAN = ({"type": t} for t in ("string", "integer", "number",
                                                          "boolean"))
WHEN = {"type": ["string", "null"], "format": "date-time"}
_LABELS = {"type": "object", "required": ["en", "zh"],
           "properties": {"en": STRING, "zh": STRING}}
_USER = _nullable({"type": "object", "properties": {"id": INTEGER,
                                                    "name": {"type": ["string", "null"]}}})
_CHOSEN = {"type": "object", "additionalProperties": _array(INTEGER),
           "description": "for each step whose approvers the submitter picks (发起人自选), "
                          "their user ids"}
_COMMENT = {"type": "object", "properties": {"comment": STRING}}
_CHECK = {"type": "object", "properties": {
    "item": STRING, "done_by": _USER, "done_at": WHEN,
    "attachment": _nullable({"type": "object", "properties": {"id": INTEGER,
                                                              "name": STRING}})}}
_APPROVAL_PROPERTIES = {
    "id": INTEGER, "flow": STRING, "flow_label": _LABELS, "object": STRING,
    "object_label": _nullable(_LABELS), "record_id": INTEGER,
    "record_title": {"description": "the record's title field"},
    "status": {"enum": ["pending", "approved", "rejected", "withdrawn"]},
    "trigger": {"enum": ["submit", "stage", "field_change"]},
    "stage_from": {"type": ["string", "null"]}, "stage_to": {"type": ["string", "null"],
                                                             "description": "a stage "
                                                             "approval: the move it waits "
                                                             "to make"},
    "submitted_at": WHEN, "finished_at": WHEN, "round": INTEGER, "submitter": _USER,
    "step": {"type": "object", "properties": {"index": INTEGER,
                                              "name": {"type": ["string", "null"]},
                                              "label": _nullable(_LABELS)}},
    "chosen": _CHOSEN,
    "task_id": {"type": "integer", "description": "inbox items: the caller's task"},
    "task_status": STRING, "task_comment": {"type": ["string", "null"]}, "task_at": WHEN,
}
_EVENT = {"type": "object", "properties": {
    "id": INTEGER, "at": WHEN, "actor": _USER, "round": INTEGER,
    "step": {"type": ["integer", "null"]}, "comment": {"type": ["string", "null"]},
    "action": {"type": "string", "description": "submit, resubmit, approve, reject, "
               "withdraw, hand_over, add_before, add_after, escalated, auto_approved, "
               "auto_rejected, approved, rejected"},
    "details": {"type": "object"}}}

FLOW_SCHEMAS: dict[str, Any] = {
    "Missing": {"type": "object", "required": ["kind", "name", "stage"], "properties": {
        "kind": {"enum": ["field", "work", "event", "approval", "reason"]},
        "name": STRING, "label": _LABELS, "stage": STRING, "message": STRING}},
    "StageRefused": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message", "missing"], "properties": {
            "code": {"const": "stage_refused"}, "message": STRING,
            "fields": {"type": "object", "additionalProperties": STRING},
            "missing": _array(_ref("Missing"))}}}},
    "StageState": {"type": "object", "properties": {
        "process": {"type": "object", "properties": {
            "name": STRING, "label": _LABELS, "field": STRING,
            "win_rate_field": {"type": ["string", "null"]}}},
        "stages": _array({"type": "object", "properties": {
            "name": STRING, "label": _LABELS, "type": {"enum": ["open", "won", "lost"]},
            "win_rate": NUMBER, "required": _array(STRING),
            "work": _array({"type": "object", "properties": {
                "name": STRING, "label": _LABELS, "due_days": {"type": ["integer", "null"]}}}),
            "key_events": _array({"type": "object", "properties": {
                "name": STRING, "label": _LABELS, "share": NUMBER, "attachment": BOOLEAN,
                "required": BOOLEAN}}),
            "approval": {"type": ["string", "null"]}}}),
        "current": {"type": ["string", "null"]}, "entered_at": WHEN, "win_rate": NUMBER,
        "done": {"type": "object", "properties": {"work": _array(_CHECK),
                                                  "events": _array(_CHECK)}},
        "next": {"type": ["string", "null"]},
        "missing": {**_array(_ref("Missing")), "description": "what moving to next needs"},
        "approval_id": {"type": ["integer", "null"],
                        "description": "the record's pending approval"},
        "version": INTEGER,
        "history": _array({"type": "object", "properties": {
            "stage": STRING, "from_stage": {"type": ["string", "null"]},
            "direction": {"enum": ["start", "forward", "back"]}, "entered_at": WHEN,
            "entered_by": _USER, "left_at": WHEN, "left_by": _USER}})}},
    "StageMove": {"type": "object", "required": ["to"], "properties": {
        "to": {"type": "string", "description": "the stage to move to"},
        "values": {"type": "object", "description": "fields given with the move: the lost "
                   "reason, or required fields of the stages entered"},
        "version": {"type": "integer", "description": "optional: the version you read"},
        "chosen": _CHOSEN}},
    "StageApprovalStarted": {"type": "object", "required": ["approval_id"], "properties": {
        "approval_id": INTEGER, "approval": _ref("ApprovalDetail")}},
    "WorkTick": {"type": "object", "required": ["item"], "properties": {
        "item": STRING, "done": {"type": "boolean", "default": True}}},
    "KeyEventInput": {"type": "object", "required": ["event"], "properties": {
        "event": STRING, "done": {"type": "boolean", "default": True},
        "attachment": {"type": "object", "required": ["base64"], "description":
                       "the document a key event needs", "properties": {
                           "name": STRING, "content_type": STRING,
                           "base64": {"type": "string", "contentEncoding": "base64"}}}}},
    "KeyEventUpload": {"type": "object", "required": ["event"], "properties": {
        "event": STRING, "done": {"enum": ["true", "false"]},
        "file": {"type": "string", "contentMediaType": "application/octet-stream"}}},
    "ApprovalSubmit": {"type": "object", "required": ["flow"], "properties": {
        "flow": STRING, "chosen": _CHOSEN, "comment": STRING}},
    "Approval": {"type": "object", "properties": _APPROVAL_PROPERTIES},
    "ApprovalDetail": {"type": "object", "properties": {
        **_APPROVAL_PROPERTIES,
        "steps": _array({"type": "object", "properties": {
            "index": INTEGER, "name": STRING, "label": _LABELS,
            "mode": {"enum": ["all", "any"]}, "approvers": STRING}}),
        "tasks": _array({"type": "object", "properties": {
            "id": INTEGER, "round": INTEGER, "step": INTEGER, "user": _USER,
            "status": {"enum": ["active", "waiting", "approved", "rejected", "handed_over",
                                "cancelled"]},
            "kind": {"enum": ["approver", "chain", "handed_over", "added_before",
                              "added_after"]},
            "waits_for": {"type": ["integer", "null"]}, "created_at": WHEN,
            "decided_at": WHEN, "comment": {"type": ["string", "null"]}}}),
        "timeline": _array(_EVENT),
        "actions": {"type": "object", "description": "what the caller may do now",
                    "additionalProperties": BOOLEAN}}},
    "ApprovalList": {"type": "object", "properties": {
        "box": {"enum": ["pending", "processed", "submitted"]},
        "items": _array(_ref("Approval"))}},
    "RecordApprovals": {"type": "object", "properties": {
        "items": _array({"allOf": [_ref("Approval"), {"type": "object", "properties": {
            "timeline": _array(_EVENT)}}]}),
        "submittable": _array({"type": "object", "properties": {
            "name": STRING, "label": _LABELS, "chosen_steps": _array(STRING)}})}},
    "ApprovalComment": _COMMENT,
    "HandOver": {"type": "object", "required": ["to_user"], "properties": {
        "to_user": INTEGER, "comment": STRING}},
    "AddApprover": {"type": "object", "required": ["user_id"], "properties": {
        "user_id": INTEGER, "position": {"enum": ["before", "after"], "default": "before"},
        "comment": STRING}},
    "Counts": {"type": "object", "properties": {
        "approvals": INTEGER, "todos": {"type": "integer",
                                        "description": "approvals plus open todos"},
        "notifications": INTEGER}},
    "TodoCentre": {"type": "object", "properties": {
        "approvals": _array(_ref("Approval")),
        "todos": _array({"type": "object", "properties": {
            "id": INTEGER, "kind": {"enum": ["assigned", "stage_work"]}, "object": STRING,
            "object_label": _nullable(_LABELS), "record_id": INTEGER, "record_title": {},
            "stage": {"type": ["string", "null"]}, "item": {"type": ["string", "null"]},
            "label": _nullable(_LABELS), "params": {"type": "object"}, "due_at": WHEN,
            "overdue": BOOLEAN, "created_at": WHEN, "handled_at": WHEN}}),
        "counts": _ref("Counts")}},
    "TodoHandled": {"type": "object", "properties": {
        "id": INTEGER, "handled": BOOLEAN, "counts": _ref("Counts")}},
    "Notifications": {"type": "object", "properties": {
        "items": _array({"type": "object", "properties": {
            "id": INTEGER, "kind": {"enum": ["approval_submitted", "approval_approved",
                                             "approval_rejected", "approval_withdrawn",
                                             "approval_handed_over", "record_transferred"]},
            "object": {"type": ["string", "null"]}, "object_label": _nullable(_LABELS),
            "record_id": {"type": ["integer", "null"]}, "record_title": {},
            "approval_id": {"type": ["integer", "null"]}, "actor": _USER,
            "params": {"type": "object"}, "created_at": WHEN, "read_at": WHEN,
            "read": BOOLEAN}}),
        "unread": INTEGER}},
    "NotificationsRead": {"type": "object", "properties": {
        "ids": {**_array(INTEGER), "description": "left out: all of the caller's"},
        "read": {"type": "boolean", "default": True,
                 "description": "false marks them unread"}}},
    "NotificationsMarked": {"type": "object", "properties": {"marked": INTEGER,
                                                             "unread": INTEGER}},
}

_ID = [{"name": "id", "in": "path", "required": True, "schema": INTEGER}]


def _post(summary: str, request: str | None, status: str, response: str, *codes: int,
          tag: str = "approvals") -> dict[str, Any]:
    out: dict[str, Any] = {"tags": [tag], "summary": summary,
                           "responses": {status: {"description": "Done", **_json(response)},
                                         **_errors(*codes)}}
    if request:
        out["requestBody"] = {"required": False, **_json(request)}
    return out


def _action(summary: str, request: str = "ApprovalComment", *codes: int) -> dict[str, Any]:
    return {"parameters": _ID, "post": _post(summary, request, "200", "ApprovalDetail",
                                             401, 404, 409, *codes)}


FLOW_PATHS: dict[str, Any] = {
    "/approvals": {"get": {
        "tags": ["approvals"], "summary": "The approval inbox",
        "parameters": [{"name": "box", "in": "query", "schema": {
            "enum": ["pending", "processed", "submitted"], "default": "pending"},
            "description": "pending for me, processed by me, submitted by me"},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                        "maximum": 200}}],
        "responses": {"200": {"description": "Newest first", **_json("ApprovalList")},
                      **_errors(401, 422)}}},
    "/approvals/{id}": {"parameters": _ID, "get": {
        "tags": ["approvals"], "summary": "An approval with its tasks and timeline (for "
        "those taking part and those who may read the record; 404 for others)",
        "responses": {"200": {"description": "The approval", **_json("ApprovalDetail")},
                      **_errors(401, 404)}}},
    "/approvals/{id}/approve": _action("Approve my task of the current step", "ApprovalComment"),
    "/approvals/{id}/reject": _action("Reject: the record returns to the submitter"),
    "/approvals/{id}/withdraw": _action("The submitter withdraws the approval (撤回)",
                                        "ApprovalComment", 403),
    "/approvals/{id}/hand-over": _action("Hand my task to another user (转交)", "HandOver",
                                         422),
    "/approvals/{id}/add-approver": _action("Add an approver before or after me (加签)",
                                            "AddApprover", 422),
    "/todos": {"get": {
        "tags": ["todos"], "summary": "The todo centre (待办): approvals waiting for me, "
        "my todos and the counts",
        "parameters": [{"name": "kind", "in": "query",
                        "schema": {"enum": ["assigned", "stage_work"]}},
                       {"name": "handled", "in": "query", "schema": BOOLEAN,
                        "description": "the handled todos instead of the open ones"}],
        "responses": {"200": {"description": "The centre", **_json("TodoCentre")},
                      **_errors(400, 401)}}},
    "/todos/{id}/handled": {"parameters": _ID, "post": {
        **_post("Mark one of my todos handled", None, "200", "TodoHandled", 401, 404,
                tag="todos"),
        "requestBody": {"required": False, "content": {"application/json": {"schema": {
            "type": "object", "properties": {"handled": {"type": "boolean",
                                                         "default": True}}}}}}}},
    "/notifications": {"get": {
        "tags": ["todos"], "summary": "My notifications, newest first",
        "parameters": [{"name": "unread", "in": "query", "schema": BOOLEAN},
                       {"name": "before", "in": "query", "schema": INTEGER,
                        "description": "the id of the last one shown, for the next page"},
                       {"name": "limit", "in": "query", "schema": {
                           "type": "integer", "minimum": 1, "maximum": 200}}],
        "responses": {"200": {"description": "Notifications", **_json("Notifications")},
                      **_errors(400, 401)}}},
    "/notifications/read": {"post": _post(
        "Mark my notifications read (those named, or all)", "NotificationsRead", "200",
        "NotificationsMarked", 401, 422, tag="todos")},
}


def flow_object_paths(registry: Registry, obj: ObjectDef) -> dict[str, Any]:
    """The stage path of an object with stage processes, the approvals of one with flows."""
    base = f"/objects/{obj.name}/records/{{id}}"
    tag = [obj.name]
    out: dict[str, Any] = {}
    if registry.processes_of(obj.name):
        refused = {"description": "Requirements not met (each one in missing) or bad values",
                   "content": {"application/json": {"schema": {"anyOf": [
                       _ref("StageRefused"), ERROR]}}}}
        out[base + "/stage"] = {"parameters": _ID, "get": {
            "tags": tag, "summary": "Where the record stands in its stage process",
            "responses": {"200": {"description": "The path", **_json("StageState")},
                          **_errors(401, 404)}},
            "post": {
                "tags": tag, "summary": "Move the record to another stage",
                "requestBody": {"required": True, **_json("StageMove")},
                "responses": {
                    "200": {"description": "Moved: the record", **_json(_schema_name(obj))},
                    "202": {"description": "The move waits for the stage approval "
                            "started (Location: the approval)",
                            **_json("StageApprovalStarted")},
                    **_errors(400, 401, 403, 404, 409), "422": refused}}}
        out[base + "/stage/work"] = {"parameters": _ID, "post": {
            **_post("Tick (or untick) stage work", "WorkTick", "200", "StageState", 400,
                    401, 403, 404, 409, 422, tag=obj.name),
            "requestBody": {"required": True, **_json("WorkTick")}}}
        out[base + "/stage/events"] = {"parameters": _ID, "post": {
            **_post("Mark a key event done (or undone)", None, "200", "StageState", 400,
                    401, 403, 404, 409, 422, tag=obj.name),
            "description": "A key event that needs a document takes it as Base64 in "
                           "attachment (JSON) or as the file part of a multipart upload.",
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": _ref("KeyEventInput")},
                "multipart/form-data": {"schema": _ref("KeyEventUpload")}}}}}
    if registry.flows_of(obj.name):
        out[base + "/approvals"] = {"parameters": _ID, "get": {
            "tags": tag, "summary": "The record's approvals with their timelines, and the "
            "flows it may be submitted to",
            "responses": {"200": {"description": "Newest first", **_json("RecordApprovals")},
                          **_errors(401, 404)}},
            "post": {
                "tags": tag, "summary": "Submit the record for approval",
                "requestBody": {"required": True, **_json("ApprovalSubmit")},
                "responses": {"201": {"description": "Submitted (Location: the approval)",
                                      **_json("ApprovalDetail")},
                              **_errors(400, 401, 403, 404, 409, 422)}}}
    return out


def openapi_document(registry: Registry, server_url: str,
                     hidden: Mapping[str, Collection[str]] | None = None) -> dict[str, Any]:
    """``hidden``: per object, the fields the reader may not see (left out)."""
    hidden = hidden or {}
    schemas: dict[str, Any] = {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                           "fields": {"type": "object",
                                      "additionalProperties": {"type": "string"}}}}}},
        "History": {"type": "object", "properties": {"items": {"type": "array", "items": {
            "type": "object", "properties": {
                "id": {"type": "integer"}, "action": {"type": "string"},
                "actor_id": {"type": ["integer", "null"]},
                "at": {"type": "string", "format": "date-time"},
                "changes": {"type": "object"}}}}}},
        **SHARING_SCHEMAS,
    }
    paths: dict[str, Any] = {
        "/auth/token": {"post": {
            "summary": "Exchange a username and password for a bearer token",
            "description": "The token lives METACRM_TOKEN_DAYS days (7 unless the server "
                           "says otherwise) and ends earlier when revoked, when the user "
                           "signs out everywhere, or when their password changes. Failed "
                           "attempts slow down further ones, together with the sign-in "
                           "page's.",
            "security": [],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["username", "password"],
                "properties": {"username": {"type": "string"},
                               "password": {"type": "string"}}}}}},
            "responses": {"200": {"description": "A token", "content": {"application/json": {
                "schema": {"type": "object", "properties": {
                    "token": {"type": "string"},
                    "expires_at": {"type": "string", "format": "date-time"},
                    "user": {"type": "object", "properties": {
                        "id": {"type": "integer"}, "username": {"type": "string"}}}}}}}},
                **_errors(400, 401),
                "429": {**_errors(429)["429"], "headers": {"Retry-After": {
                    "description": "Seconds to wait", "schema": {"type": "integer"}}}}}},
            "delete": {
                "summary": "Revoke the bearer token this request is sent with",
                "responses": {"204": {"description": "The token no longer works"},
                              **_errors(400, 401)}}},
        "/auth/tokens": {"delete": {
            "summary": "Sign out everywhere: revoke every token and end every browser "
                       "session of the caller",
            "responses": {"200": {"description": "How many were ended", "content": {
                "application/json": {"schema": {"type": "object", "properties": {
                    "ended": {"type": "integer"}}}}}}, **_errors(401)}}},
        "/me": {"get": {"summary": "The caller, their roles and what they allow per object",
                        "responses": {"200": {"description": "The caller"}, **_errors(401)}}},
        "/regions/children": {"get": {
            "summary": "The provinces (a region field's first choice)",
            "responses": {"200": {"description": "Regions: code, name, level"},
                          **_errors(401)}}},
        "/regions/{code}/children": {"get": {
            "summary": "The regions under a province or city",
            "parameters": [{"name": "code", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": {"200": {"description": "Regions: code, name, level"},
                          **_errors(401, 404)}}},
        "/objects": {"get": {"summary": "The installed objects",
                             "responses": {"200": {"description": "Objects"}, **_errors(401)}}},
        "/objects/{name}": {"get": {
            "summary": "An object's full definition",
            "parameters": [{"name": "name", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": {"200": {"description": "Definition"}, **_errors(401, 404)}}},
    }
    schemas.update(FLOW_SCHEMAS)
    paths.update(FLOW_PATHS)
    for obj in registry.active_objects:
        schemas.update(object_schemas(
            obj, registry.owned_fields(obj.name),
            {p.field for p in registry.processes_of(obj.name) if p.start_stages},
            hidden.get(obj.name, frozenset())))
        paths.update(object_paths(obj))
        paths.update(flow_object_paths(registry, obj))
    return {
        "openapi": "3.1.0",
        "info": {"title": "metacrm API", "version": __version__,
                 "description": f"Generated from metadata version {registry.version}."},
        "servers": [{"url": server_url}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
