"""An OpenAPI 3.1 document generated from the live metadata: one schema per object."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from metacrm import __version__
from metacrm.engine.schema.registry import Registry
from metacrm.metadata.model import FieldDef, ObjectDef
from metacrm.ui.api.openapi_flows import (
    FLOW_PATHS,
    FLOW_SCHEMAS,
    errors,
    flow_object_paths,
    json_body,
    schema_name,
)


def _field_schema(f: FieldDef, owned: Collection[str] = ()) -> dict[str, Any]:
    schema = dict(f.kind.value_schema(f))
    schema["title"] = f.label.en
    schema["description"] = f"{f.label.zh}. " + schema.get("description", f"{f.type} field")
    if f.system and f.name not in ("owner", "business_type") or f.name in owned:
        schema["readOnly"] = True
    return {"anyOf": [schema, {"type": "null"}]} if not f.required else schema


def object_schemas(obj: ObjectDef, owned: Collection[str] = (), chosen: Collection[str] = (),
                   hidden: Collection[str] = frozenset()) -> dict[str, Any]:
    """``owned``: the fields only the engine writes (read-only here); ``chosen``: those
    of them a new record may still name (a stage field whose process has start stages);
    ``hidden``: the fields the caller may not see (left out)."""
    name = schema_name(obj)
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
            "items": {"$ref": f"#/components/schemas/{schema_name(f.target)}{suffix}"}}


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
    name = schema_name(obj)
    base = f"/objects/{obj.name}/records"
    record_id = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}]
    tag = [obj.name]
    return {
        base: {
            "get": {"tags": tag, "summary": f"List {obj.label.en} records",
                    "parameters": LIST_PARAMETERS,
                    "responses": {"200": {"description": "A page", **json_body(f"{name}Page")},
                                  **errors(400, 401, 404)}},
            "post": {"tags": tag, "summary": f"Create a {obj.label.en}",
                     "requestBody": {"required": True, **json_body(f"{name}Input")},
                     "responses": {"201": {"description": "Created", **json_body(name)},
                                   **errors(400, 401, 404, 422)}},
        },
        base + "/{id}": {
            "parameters": record_id,
            "get": {"tags": tag, "summary": f"Read a {obj.label.en}",
                    "responses": {"200": {"description": "The record", **json_body(name)},
                                  **errors(401, 404)}},
            "patch": {"tags": tag, "summary": f"Change a {obj.label.en}",
                      "requestBody": {"required": True, **json_body(f"{name}Patch")},
                      "responses": {"200": {"description": "Changed", **json_body(name)},
                                    **errors(400, 401, 404, 409, 422)}},
            "delete": {"tags": tag, "summary": "Move to the recycle bin",
                       "responses": {"204": {"description": "Deleted"},
                                     **errors(401, 404, 409)}},
        },
        base + "/{id}/restore": {
            "parameters": record_id,
            "post": {"tags": tag, "summary": "Restore from the recycle bin",
                     "responses": {"200": {"description": "Restored", **json_body(name)},
                                   **errors(401, 404)}},
        },
        base + "/{id}/history": {
            "parameters": record_id,
            "get": {"tags": tag, "summary": "Change history",
                    "responses": {"200": {"description": "Audit entries, newest first",
                                          **json_body("History")}, **errors(401, 404)}},
        },
        base + "/{id}/permissions": {
            "parameters": record_id,
            "get": {"tags": tag, "summary": "What the caller may do with this record",
                    "responses": {"200": {"description": "A flag per operation",
                                          **json_body("Operations")}, **errors(401, 404)}},
        },
        f"/objects/{obj.name}/transfer": {
            "post": {"tags": tag, "summary": "Give records a new owner (转移)",
                     "requestBody": {"required": True, **json_body("TransferInput")},
                     "responses": {"200": {"description": "The records moved, per object",
                                           **json_body("TransferResult")},
                                   **errors(401, 403, 404, 422)}},
        },
        f"/objects/{obj.name}/export": {
            "get": {"tags": tag, "summary": "The records the caller may export, as CSV",
                    "parameters": LIST_PARAMETERS,
                    "responses": {"200": {"description": "CSV with a header row",
                                          "content": {"text/csv": {"schema": {
                                              "type": "string"}}}},
                                  **errors(400, 401, 403)}},
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
                                  **errors(400, 401, 403, 404)}},
        },
        **(team_paths(obj, base, record_id, tag) if "team" in obj.features else {}),
    }


def team_paths(obj: ObjectDef, base: str, record_id: list, tag: list) -> dict[str, Any]:
    user_id = {"name": "user_id", "in": "path", "required": True, "schema": {"type": "integer"}}
    return {
        base + "/{id}/team": {
            "parameters": record_id,
            "get": {"tags": tag, "summary": "Team members (团队成员), the owner first",
                    "responses": {"200": {"description": "Members", **json_body("TeamMembers")},
                                  **errors(401, 404)}},
            "post": {"tags": tag, "summary": "Add or change a team member",
                     "requestBody": {"required": True, **json_body("TeamMemberInput")},
                     "responses": {"201": {"description": "Members", **json_body("TeamMembers")},
                                   **errors(401, 403, 404, 422)}},
        },
        base + "/{id}/team/{user_id}": {
            "parameters": [*record_id, user_id],
            "delete": {"tags": tag, "summary": "Remove a member (or leave the team)",
                       "responses": {"204": {"description": "Removed"},
                                     **errors(401, 403, 404)}},
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
                **errors(400, 401),
                "429": {**errors(429)["429"], "headers": {"Retry-After": {
                    "description": "Seconds to wait", "schema": {"type": "integer"}}}}}},
            "delete": {
                "summary": "Revoke the bearer token this request is sent with",
                "responses": {"204": {"description": "The token no longer works"},
                              **errors(400, 401)}}},
        "/auth/tokens": {"delete": {
            "summary": "Sign out everywhere: revoke every token and end every browser "
                       "session of the caller",
            "responses": {"200": {"description": "How many were ended", "content": {
                "application/json": {"schema": {"type": "object", "properties": {
                    "ended": {"type": "integer"}}}}}}, **errors(401)}}},
        "/me": {"get": {"summary": "The caller, their roles and what they allow per object",
                        "responses": {"200": {"description": "The caller"}, **errors(401)}}},
        "/regions/children": {"get": {
            "summary": "The provinces (a region field's first choice)",
            "responses": {"200": {"description": "Regions: code, name, level"},
                          **errors(401)}}},
        "/regions/{code}/children": {"get": {
            "summary": "The regions under a province or city",
            "parameters": [{"name": "code", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": {"200": {"description": "Regions: code, name, level"},
                          **errors(401, 404)}}},
        "/objects": {"get": {"summary": "The installed objects",
                             "responses": {"200": {"description": "Objects"}, **errors(401)}}},
        "/objects/{name}": {"get": {
            "summary": "An object's full definition",
            "parameters": [{"name": "name", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": {"200": {"description": "Definition"}, **errors(401, 404)}}},
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
