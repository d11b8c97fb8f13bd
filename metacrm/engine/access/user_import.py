"""Users from a CSV file: all or nothing, every problem named by line and column."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from metacrm.engine.access import roles, users
from metacrm.engine.access.org import check_password, department_by_path, random_password
from metacrm.engine.errors import ValidationFailed
from metacrm.engine.systables import sys_role, sys_user
from metacrm.metadata.messages import Message

__all__ = ["IMPORT_COLUMNS", "ImportResult", "import_users"]

IMPORT_COLUMNS = ("username", "display_name", "email", "department", "superior", "roles",
                  "password")


@dataclass
class ImportResult:
    created: list[dict[str, str]]  # username and, where generated, the first password
    errors: list[tuple[int, dict[str, Any]]]  # (line, {column: message})


def import_users(session: Session, text: str) -> ImportResult:
    """Create users from CSV (a header row naming IMPORT_COLUMNS); all or nothing."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if not reader.fieldnames or "username" not in reader.fieldnames:
        raise ValidationFailed({"file": Message("the first row must name the columns, "
                                                "starting with username")})
    unknown = [c for c in reader.fieldnames if c not in IMPORT_COLUMNS]
    if unknown:
        raise ValidationFailed({"file": Message("unknown column(s): %(columns)s",
                                                columns=", ".join(unknown))})
    known_departments = department_by_path(session)
    role_ids = {name: rid for rid, name in session.execute(
        select(sys_role.c.id, sys_role.c.name))}
    existing = set(session.execute(select(sys_user.c.username)).scalars())
    rows = list(reader)
    incoming = {(r.get("username") or "").strip() for r in rows}
    seen: set[str] = set()
    errors: list[tuple[int, dict[str, Any]]] = []
    for line, row in enumerate(rows, start=2):
        problems: dict[str, Any] = {}
        username = (row.get("username") or "").strip()
        if not username or " " in username or len(username) > 150:
            problems["username"] = Message("must be 1 to 150 characters without spaces")
        elif username in existing or username in seen:
            problems["username"] = Message("'%(value)s' is already taken", value=username)
        seen.add(username)
        department = (row.get("department") or "").strip()
        if department and department not in known_departments:
            problems["department"] = Message("no department '%(value)s'", value=department)
        superior = (row.get("superior") or "").strip()
        if superior and superior not in existing and superior not in incoming:
            problems["superior"] = Message("no user '%(value)s'", value=superior)
        for name in _split(row.get("roles")):
            if name not in role_ids:
                problems["roles"] = Message("no role '%(value)s'", value=name)
        if row.get("password"):
            check_password(row["password"], problems)
        if problems:
            errors.append((line, problems))
    errors.extend(_superior_cycles(session, rows, errors))
    if errors:
        return ImportResult([], sorted(errors, key=lambda e: e[0]))
    created = []
    ids: dict[str, int] = {}
    for row in rows:
        username = row["username"].strip()
        password = row.get("password") or random_password()
        ids[username] = users.create_user(
            session, username, password, display_name=(row.get("display_name") or "").strip()
            or None, email=(row.get("email") or "").strip() or None,
            department_id=known_departments.get((row.get("department") or "").strip()),
            roles=_split(row.get("roles")) or None)
        created.append({"username": username,
                        "password": "" if row.get("password") else password})
    by_name = dict(session.execute(select(sys_user.c.username, sys_user.c.id)).all())
    for row in rows:
        superior = (row.get("superior") or "").strip()
        if superior:
            session.execute(update(sys_user).where(sys_user.c.id == ids[row["username"].strip()])
                            .values(superior_id=by_name[superior]))
    roles.forget(session)
    return ImportResult(created, [])


def _superior_cycles(session: Session, rows: list[dict], errors: list) -> list:
    """Lines whose superior chain, through the file and the existing users, loops."""
    existing = session.execute(select(sys_user.c.id, sys_user.c.username,
                                      sys_user.c.superior_id)).all()
    names = {r.id: r.username for r in existing}
    chain = {r.username: names.get(r.superior_id) for r in existing}
    for row in rows:
        chain[(row.get("username") or "").strip()] = (row.get("superior") or "").strip() or None
    failed = {line for line, _ in errors}
    out = []
    for line, row in enumerate(rows, start=2):
        start = (row.get("username") or "").strip()
        seen, current = set(), chain.get(start)
        while current is not None and current not in seen and current != start:
            seen.add(current)
            current = chain.get(current)
        if current == start and line not in failed:
            out.append((line, {"superior": Message(
                "a user's superior cannot be the user or one of their subordinates")}))
    return out


def _split(raw: str | None) -> list[str]:
    return [p.strip() for p in (raw or "").replace(",", ";").split(";") if p.strip()]
