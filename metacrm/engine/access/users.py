"""Users, passwords and API tokens; departments, superiors and roles live in ``org``/``roles``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from metacrm import clock
from metacrm.engine.access import credentials, org, permissions
from metacrm.engine.access import roles as role_service
from metacrm.engine.actor import Actor
from metacrm.engine.errors import ValidationFailed
from metacrm.engine.systables import sys_api_token, sys_session, sys_user
from metacrm.metadata.messages import Message

__all__ = ["active_users", "actor_for_session", "actor_for_token", "authenticate",
           "create_user", "display_names", "issue_token", "issue_token_until", "load_actor",
           "set_language"]

# Checked against when a username is unknown, so both failures cost the same time.
_DUMMY_HASH = generate_password_hash("not-a-password")



def create_user(session: Session, username: str, password: str, *, is_admin: bool = False,
                display_name: str | None = None, language: str = "zh",
                email: str | None = None, department_id: int | None = None,
                superior_id: int | None = None, roles: list[str] | None = None) -> int:
    """A new active user, in the top department unless told otherwise.

    Roles default to the super-administrator role with ``is_admin``, else the employee role.
    """
    errors: dict[str, Message] = {}
    if not username or len(username) > 150 or not username.isprintable() or " " in username:
        errors["username"] = Message("must be 1 to 150 characters without spaces")
    org.check_password(password, errors)
    if "username" not in errors and session.execute(select(sys_user.c.id).where(
            sys_user.c.username == username)).first():
        errors["username"] = Message("'%(value)s' is already taken", value=username)
    org.check_placement(session, department_id, superior_id, errors)
    if language not in ("zh", "en"):
        errors["language"] = Message("must be zh or en")
    if errors:
        raise ValidationFailed(errors)
    role_service.ensure_defaults(session)
    user_id = session.execute(insert(sys_user).returning(sys_user.c.id).values(
        username=username, display_name=display_name or username,
        password_hash=generate_password_hash(password), active=True, language=language,
        email=email, department_id=department_id or org.root_department_id(session),
        superior_id=superior_id, created_at=clock.now())).scalar_one()
    role_service.set_user_roles(session, user_id, roles or (
        [org.SUPER_ROLE] if is_admin else [org.DEFAULT_ROLE]))
    return user_id


def _load(session: Session, *where, join=None, extra=()) -> tuple[Actor, Any] | None:
    """The user with their roles and grants in one statement; the access is remembered
    on the session, so the permission checks of the request need no query of their own."""
    source = sys_user if join is None else sys_user.join(*join)
    rows = session.execute(permissions.access_rows(
        source, where, [sys_user.c.id, sys_user.c.username, sys_user.c.display_name,
                        sys_user.c.language, sys_user.c.department_id, *extra])).all()
    if not rows:
        return None
    first = rows[0]
    access = permissions.access_from_rows(first.id, first.department_id, rows)
    permissions.remember_access(session, access)
    return Actor(user_id=first.id, username=first.username, is_admin=access.is_super,
                 language=first.language, department_id=first.department_id,
                 display_name=first.display_name or first.username), first


def authenticate(session: Session, username: str, password: str) -> Actor | None:
    if not username or len(username) > 150 or "\x00" in username or not _encodable(username):
        check_password_hash(_DUMMY_HASH, password)  # no such user can exist
        return None
    found = _load(session, sys_user.c.username == username,
                  extra=(sys_user.c.password_hash, sys_user.c.active))
    if found is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    actor, row = found
    if not check_password_hash(row.password_hash, password) or not row.active:
        return None
    return actor


def load_actor(session: Session, user_id: int) -> Actor | None:
    found = _load(session, sys_user.c.id == user_id, sys_user.c.active.is_(True))
    return found[0] if found else None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def issue_token(session: Session, actor: Actor,
                lifetime: dt.timedelta = credentials.TOKEN_LIFETIME) -> str:
    """A random bearer token; only its hash is stored."""
    return issue_token_until(session, actor, lifetime)[0]


def issue_token_until(session: Session, actor: Actor,
                      lifetime: dt.timedelta) -> tuple[str, dt.datetime]:
    """A random bearer token and when it expires."""
    token, expires_at = credentials.new_secret(), clock.now() + lifetime
    session.execute(delete(sys_api_token).where(sys_api_token.c.expires_at < clock.now()))
    session.execute(insert(sys_api_token).values(token_hash=credentials.digest(token),
                                                 user_id=actor.user_id, created_at=clock.now(),
                                                 expires_at=expires_at))
    return token, expires_at


def actor_for_token(session: Session, token: str) -> Actor | None:
    """One indexed read: the token's user, if the token is live and the user active."""
    found = _load(session, sys_api_token.c.token_hash == credentials.digest(token),
                  sys_api_token.c.expires_at > clock.now(), sys_user.c.active.is_(True),
                  join=(sys_api_token, sys_api_token.c.user_id == sys_user.c.id))
    return found[0] if found else None


def actor_for_session(session: Session, user_id: int, session_id: str) -> Actor | None:
    """The user of a browser session, if the session was not ended and the user is active."""
    found = _load(session, sys_session.c.session_hash == credentials.digest(session_id),
                  sys_session.c.user_id == user_id, sys_session.c.expires_at > clock.now(),
                  sys_user.c.active.is_(True),
                  join=(sys_session, sys_session.c.user_id == sys_user.c.id))
    return found[0] if found else None


def set_language(session: Session, actor: Actor, language: str) -> None:
    if language not in ("zh", "en"):
        raise ValidationFailed({"language": "must be zh or en"})
    session.execute(update(sys_user).where(sys_user.c.id == actor.user_id)
                    .values(language=language))


def display_names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(select(sys_user.c.id, sys_user.c.display_name)
                           .where(sys_user.c.id.in_(ids)))
    return {r.id: r.display_name for r in rows}


def active_users(session: Session) -> list[tuple[int, str]]:
    rows = session.execute(select(sys_user.c.id, sys_user.c.display_name)
                           .where(sys_user.c.active.is_(True)).order_by(sys_user.c.display_name))
    return [(r.id, r.display_name) for r in rows]
