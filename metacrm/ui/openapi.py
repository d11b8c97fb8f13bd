"""An OpenAPI 3.1 document generated from the live metadata: one schema per object."""

from __future__ import annotations

from typing import Any

from metacrm import __version__
from metacrm.engine.registry import Registry
from metacrm.metadata.model import FieldDef, ObjectDef

ERROR = {"$ref": "#/components/schemas/Error"}


def _field_schema(f: FieldDef) -> dict[str, Any]:
    schema = dict(f.kind.value_schema(f))
    schema["title"] = f.label.en
    schema["description"] = f"{f.label.zh}. " + schema.get("description", f"{f.type} field")
    if f.system and f.name not in ("owner", "business_type"):
        schema["readOnly"] = True
    return {"anyOf": [schema, {"type": "null"}]} if not f.required else schema


def _schema_name(obj: ObjectDef | str) -> str:
    name = obj if isinstance(obj, str) else obj.name
    return "".join(part.capitalize() for part in name.split("_"))


def object_schemas(obj: ObjectDef) -> dict[str, Any]:
    name = _schema_name(obj)
    fields = obj.queryable
    writable = {n: f for n, f in fields.items()
                if (f.writable or n in ("owner", "business_type"))}
    lines = {f.name: _lines_schema(f, "") for f in obj.line_fields}
    line_inputs = {f.name: _lines_schema(f, "Line") for f in obj.line_fields}
    out = {
        name: {"type": "object", "title": obj.label.en, "description": obj.label.zh,
               "properties": {**{n: _field_schema(f) for n, f in fields.items()}, **lines}},
        f"{name}Input": {
            "type": "object", "additionalProperties": False,
            "required": [n for n, f in writable.items() if f.required],
            "properties": {**{n: _field_schema(f) for n, f in writable.items()},
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
            404: "Not found", 409: "Stale version", 422: "Invalid values"}
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


def openapi_document(registry: Registry, server_url: str) -> dict[str, Any]:
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
            "summary": "Exchange a username and password for a bearer token", "security": [],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["username", "password"],
                "properties": {"username": {"type": "string"},
                               "password": {"type": "string"}}}}}},
            "responses": {"200": {"description": "A token", "content": {"application/json": {
                "schema": {"type": "object", "properties": {"token": {"type": "string"}}}}}},
                **_errors(400, 401)}}},
        "/me": {"get": {"summary": "The caller, their roles and what they allow per object",
                        "responses": {"200": {"description": "The caller"}, **_errors(401)}}},
        "/objects": {"get": {"summary": "The installed objects",
                             "responses": {"200": {"description": "Objects"}, **_errors(401)}}},
        "/objects/{name}": {"get": {
            "summary": "An object's full definition",
            "parameters": [{"name": "name", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": {"200": {"description": "Definition"}, **_errors(401, 404)}}},
    }
    for obj in registry.active_objects:
        schemas.update(object_schemas(obj))
        paths.update(object_paths(obj))
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
