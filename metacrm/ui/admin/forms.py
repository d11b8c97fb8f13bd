"""Small request helpers of the admin pages: whitelisted numbers from forms and query
strings, and the choices every admin form offers (departments, users, roles)."""

from __future__ import annotations

from typing import Any

from flask import request

from metacrm.engine.access import admin, org, roles
from metacrm.ui.input import whole_number
from metacrm.ui.runtime import db


def number(raw: str | None) -> int | None:
    """A whole number from a form or query string; anything else is 'not given'."""
    return whole_number((raw or "").strip())


def form_int(name: str) -> int | None:
    return number(request.form.get(name))


def arg_int(name: str) -> int | None:
    return number(request.args.get(name))


def form_ints(name: str) -> list[int]:
    return [n for v in request.form.getlist(name) if (n := whole_number(v.strip())) is not None]


def choices() -> dict[str, Any]:
    """What the user and department forms pick from."""
    session = db()
    everyone = admin.all_users(session)
    return {"departments": org.departments(session), "users": everyone,
            "user_names": {u[0]: u[1] for u in everyone}, "roles": roles.all_roles(session)}
