"""The admin API's JSON: strict parsing of request bodies (a wrong type is a field error,
never a database error) and the shapes of users, departments and roles in responses."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request

from metacrm.engine.access import org, roles
from metacrm.engine.errors import ValidationFailed
from metacrm.metadata.messages import Message
from metacrm.ui.errors import ApiError
from metacrm.ui.input import whole_number


# -- parsing ----------------------------------------------------------------------------
def only(body: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = [k for k in body if k not in allowed]
    if unknown:
        raise ValidationFailed({k[:63]: Message("is not a field you can set here")
                                for k in unknown})


def whole(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed({key: Message("must be a whole number")})
    return value


def text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise ValidationFailed({key: Message("must be text")})
    return value


def arg_int(name: str) -> int:
    value = whole_number(request.args.get(name, ""))
    if value is None:
        raise ApiError(400, "bad_query", Message("%(field)s %(problem)s", field=name,
                                                 problem=Message("must be a whole number")),
                       {name: Message("must be a whole number")})
    return value


def strings(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationFailed({key: Message("must be a list of names")})
    return value


def arg_flag(name: str) -> bool:
    """A yes/no query argument: ``?preview=1`` (or true, yes)."""
    return request.args.get(name, "").lower() in ("1", "true", "yes")


def created(body: dict[str, Any], location: str) -> Response:
    response = jsonify(body)
    response.status_code = 201
    response.headers["Location"] = location
    return response


def no_content() -> Response:
    return Response(status=204)


# -- shapes -----------------------------------------------------------------------------
USER_FIELDS = ("display_name", "email", "department_id", "superior_id", "language",
               "roles", "active", "dimensions")


def user_json(user: dict[str, Any]) -> dict[str, Any]:
    out = {k: user[k] for k in ("id", "username", "display_name", "email", "language",
                                "active", "department_id", "department", "superior_id",
                                "superior")}
    out["roles"] = [r["name"] for r in user["roles"]]
    if "dimensions" in user:
        out["dimensions"] = user["dimensions"]
    return out


def role_names(body: dict[str, Any]) -> list[str] | None:
    value = body.get("roles")
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationFailed({"roles": Message("must be a list of role names")})
    return value


def dimension_values(body: dict[str, Any]) -> dict[str, list[int]] | None:
    value = body.get("dimensions")
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
            isinstance(ids, list) and all(isinstance(i, int) and not isinstance(i, bool)
                                          for i in ids) for ids in value.values()):
        raise ValidationFailed({"dimensions": Message(
            "must map each dimension to a list of node ids")})
    return value


def department_json(d: org.Department) -> dict[str, Any]:
    return {"id": d.id, "name": d.name, "parent_id": d.parent_id, "head_id": d.head_id,
            "depth": d.depth, "users": d.users}


def role_json(role: roles.Role) -> dict[str, Any]:
    return {"id": role.id, "name": role.name, "label": role.label,
            "description": role.description, "is_super": role.is_super,
            "members": role.members}
