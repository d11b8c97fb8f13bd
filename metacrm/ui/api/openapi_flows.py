"""The OpenAPI document's building blocks shared by every part (error answers, request
bodies, schema names) and its flow parts: stage paths, approvals, todos and
notifications (metacrm.ui.api.flows)."""

from __future__ import annotations

from typing import Any

from metacrm.engine.flows.notifications import GROUPS
from metacrm.engine.schema.registry import Registry
from metacrm.metadata.model import ObjectDef

ERROR = {"$ref": "#/components/schemas/Error"}


def schema_name(obj: ObjectDef | str) -> str:
    name = obj if isinstance(obj, str) else obj.name
    return "".join(part.capitalize() for part in name.split("_"))


def json_body(ref: str) -> dict:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def errors(*codes: int) -> dict:
    text = {400: "Bad request or query", 401: "Not signed in", 403: "Not allowed",
            404: "Not found", 409: "Conflict: a stale version, a record locked by its "
            "approval, or an approval that no longer waits for this action",
            422: "Invalid values",
            429: "Too many failed attempts: wait the seconds of the Retry-After header"}
    return {str(c): {"description": text[c], "content": {"application/json": {"schema": ERROR}}}
            for c in codes}


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
        "counts": _ref("Counts"),
        "kinds": {**_array(_ref("TodoKind")),
                  "description": "the catalogue: approvals, assigned, stage work and one "
                                 "kind per reminder rule, with my counts"}}},
    "TodoKind": {"type": "object", "properties": {
        "name": STRING, "label": _LABELS,
        "scenes": _array({"type": "object", "properties": {
            "name": STRING, "label": _LABELS, "count": INTEGER}}),
        "counts": {"type": "object", "additionalProperties": INTEGER},
        "markable": _array(STRING), "delegable": BOOLEAN}},
    "TodoItems": {"type": "object", "properties": {
        "kind": STRING, "scene": STRING,
        "items": _array({"type": "object", "properties": {
            "id": INTEGER, "object": {"type": ["string", "null"]},
            "record_id": {"type": ["integer", "null"]}, "title": {},
            "owner": {"type": ["integer", "null"]}, "user_id": {"type": ["integer", "null"]},
            "due": {"type": ["string", "null"]}}}),
        "next": {"type": ["integer", "null"],
                 "description": "the cursor of the next page; null on the last"}}},
    "TodoMark": {"type": "object", "required": ["ids"], "properties": {
        "ids": _array(INTEGER),
        "user": {"type": ["string", "integer"],
                 "description": "whose todos: all (mine and my subordinates') or a "
                                "subordinate's id; mine when left out"}}},
    "TodoMarked": {"type": "object", "properties": {"marked": INTEGER}},
    "TodoHandled": {"type": "object", "properties": {
        "id": INTEGER, "handled": BOOLEAN, "counts": _ref("Counts")}},
    "Notifications": {"type": "object", "properties": {
        "items": _array({"type": "object", "properties": {
            "id": INTEGER, "kind": {"type": "string", "description": "an open catalogue: "
                                    "approval_submitted, record_transferred, automation…"},
            "group": {"type": ["string", "null"], "description": "the kind's group"},
            "text": {"type": "string", "description": "the notification in the caller's "
                     "language: its params.message if it carries one, else its kind's words"},
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
    "Announcement": {"type": "object", "properties": {
        "id": INTEGER, "title": STRING, "body": STRING, "created_by": _USER,
        "created_at": WHEN, "expires_at": WHEN, "read_at": WHEN, "read": BOOLEAN}},
    "Announcements": {"type": "object", "properties": {
        "items": _array(_ref("Announcement")), "unread": INTEGER}},
    "NewAnnouncement": {"type": "object", "required": ["title"], "properties": {
        "title": {"type": "string", "minLength": 1, "maxLength": 200},
        "body": {"type": "string", "maxLength": 20000,
                 "description": "plain text; line breaks are kept"},
        "expires_at": {"type": ["string", "null"], "format": "date-time",
                       "description": "hidden from users from then on"}}},
    "AnnouncementsRead": {"type": "object", "properties": {
        "ids": {**_array(INTEGER), "description": "left out: all of the caller's"}}},
}

_ID = [{"name": "id", "in": "path", "required": True, "schema": INTEGER}]
_KIND = [{"name": "kind", "in": "path", "required": True, "schema": STRING,
          "description": "approvals, assigned, stage_work or a reminder rule "
                         "(<object>.<name>)"}]
_ITEM_OR_KIND = [{"name": "id", "in": "path", "required": True, "schema": STRING,
                  "description": "one of my todos by its id, or a kind (as in "
                                 "/todos/{kind}) to mark its items in bulk"}]


def _post(summary: str, request: str | None, status: str, response: str, *codes: int,
          tag: str = "approvals") -> dict[str, Any]:
    out: dict[str, Any] = {"tags": [tag], "summary": summary,
                           "responses": {status: {"description": "Done", **json_body(response)},
                                         **errors(*codes)}}
    if request:
        out["requestBody"] = {"required": False, **json_body(request)}
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
        "responses": {"200": {"description": "Newest first", **json_body("ApprovalList")},
                      **errors(401, 422)}}},
    "/approvals/{id}": {"parameters": _ID, "get": {
        "tags": ["approvals"], "summary": "An approval with its tasks and timeline (for "
        "those taking part and those who may read the record; 404 for others)",
        "responses": {"200": {"description": "The approval", **json_body("ApprovalDetail")},
                      **errors(401, 404)}}},
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
        "responses": {"200": {"description": "The centre", **json_body("TodoCentre")},
                      **errors(400, 401)}}},
    "/todos/{kind}": {"parameters": _KIND, "get": {
        "tags": ["todos"], "summary": "One page of a todo kind's scene (e.g. a reminder "
        "rule's due items)",
        "parameters": [{"name": "scene", "in": "query", "schema": STRING,
                        "description": "one of the kind's scenes; the first by default"},
                       {"name": "user", "in": "query", "schema": STRING,
                        "description": "all, or a subordinate's id (查看下属的待办)"},
                       {"name": "cursor", "in": "query", "schema": INTEGER}],
        "responses": {"200": {"description": "The page", **json_body("TodoItems")},
                      **errors(400, 401, 404)}}},
    "/todos/{id}/handled": {"parameters": _ITEM_OR_KIND, "post": {
        "tags": ["todos"],
        "summary": "Mark items handled (标记为已处理), mine or a subordinate's, the records "
        "staying as they are: a kind with {ids} (bulk); or one of my todos by its id, "
        "with an optional {handled: false} to reopen it",
        "requestBody": {"required": False, "content": {"application/json": {"schema": {
            "anyOf": [_ref("TodoMark"), {"type": "object", "properties": {
                "handled": {"type": "boolean", "default": True}}}]}}}},
        "responses": {"200": {"description": "Done", "content": {"application/json": {
            "schema": {"anyOf": [_ref("TodoMarked"), _ref("TodoHandled")]}}}},
            **errors(401, 404, 422)}}},
    "/notifications": {"get": {
        "tags": ["todos"], "summary": "My notifications, newest first",
        "parameters": [{"name": "unread", "in": "query", "schema": BOOLEAN},
                       {"name": "group", "in": "query", "schema": {"enum": list(GROUPS)},
                        "description": "one group of kinds"},
                       {"name": "before", "in": "query", "schema": INTEGER,
                        "description": "the id of the last one shown, for the next page"},
                       {"name": "limit", "in": "query", "schema": {
                           "type": "integer", "minimum": 1, "maximum": 200}}],
        "responses": {"200": {"description": "Notifications", **json_body("Notifications")},
                      **errors(400, 401)}}},
    "/notifications/read": {"post": _post(
        "Mark my notifications read (those named, or all)", "NotificationsRead", "200",
        "NotificationsMarked", 401, 422, tag="todos")},
    "/announcements": {"get": {
        "tags": ["announcements"], "summary": "Announcements (公告) for me, newest first; "
        "expired ones are left out",
        "parameters": [{"name": "unread", "in": "query", "schema": BOOLEAN},
                       {"name": "limit", "in": "query", "schema": {
                           "type": "integer", "minimum": 1, "maximum": 200}}],
        "responses": {"200": {"description": "Announcements", **json_body("Announcements")},
                      **errors(401)}},
        "post": {**_post("Publish an announcement (administrators)", "NewAnnouncement",
                         "201", "Announcement", 400, 401, 403, 422, tag="announcements"),
                 "requestBody": {"required": True, **json_body("NewAnnouncement")}}},
    "/announcements/{id}": {"parameters": _ID, "delete": {
        "tags": ["announcements"], "summary": "Delete an announcement (administrators)",
        "responses": {"204": {"description": "Deleted"}, **errors(401, 403, 404)}}},
    "/announcements/read": {"post": _post(
        "Mark my announcements read (those named, or all)", "AnnouncementsRead", "200",
        "NotificationsMarked", 400, 401, 422, tag="announcements")},
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
            "responses": {"200": {"description": "The path", **json_body("StageState")},
                          **errors(401, 404)}},
            "post": {
                "tags": tag, "summary": "Move the record to another stage",
                "requestBody": {"required": True, **json_body("StageMove")},
                "responses": {
                    "200": {"description": "Moved: the record", **json_body(schema_name(obj))},
                    "202": {"description": "The move waits for the stage approval "
                            "started (Location: the approval)",
                            **json_body("StageApprovalStarted")},
                    **errors(400, 401, 403, 404, 409), "422": refused}}}
        out[base + "/stage/work"] = {"parameters": _ID, "post": {
            **_post("Tick (or untick) stage work", "WorkTick", "200", "StageState", 400,
                    401, 403, 404, 409, 422, tag=obj.name),
            "requestBody": {"required": True, **json_body("WorkTick")}}}
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
            "responses": {"200": {"description": "Newest first", **json_body("RecordApprovals")},
                          **errors(401, 404)}},
            "post": {
                "tags": tag, "summary": "Submit the record for approval",
                "requestBody": {"required": True, **json_body("ApprovalSubmit")},
                "responses": {"201": {"description": "Submitted (Location: the approval)",
                                      **json_body("ApprovalDetail")},
                              **errors(400, 401, 403, 404, 409, 422)}}}
    return out
