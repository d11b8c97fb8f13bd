"""Users, passwords and API tokens (roles and departments come with the org module)."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from metacrm.engine.actor import Actor
from metacrm.engine.errors import ValidationFailed
from metacrm.engine.systables import sys_api_token, sys_user

TOKEN_LIFETIME = dt.timedelta(days=30)
MIN_PASSWORD = 8
# Checked against when a username is unknown, so both failures cost the same time.
_DUMMY_HASH = generate_password_hash("not-a-password")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def create_user(session: Session, username: str, password: str, *, is_admin: bool = False,
                display_name: str | None = None, language: str = "zh",
                email: str | None = None) -> int:
    errors = {}
    if not username or len(username) > 150 or not username.isprintable() or " " in username:
        errors["username"] = "must be 1 to 150 characters without spaces"
    if len(password or "") < MIN_PASSWORD:
        errors["password"] = f"must be at least {MIN_PASSWORD} characters"
    if not errors and session.execute(select(sys_user.c.id).where(
            sys_user.c.username == username)).first():
        errors["username"] = f"'{username}' is already taken"
    if errors:
        raise ValidationFailed(errors)
    return session.execute(insert(sys_user).returning(sys_user.c.id).values(
        username=username, display_name=display_name or username,
        password_hash=generate_password_hash(password), is_admin=is_admin, active=True,
        language=language, email=email, created_at=now())).scalar_one()


def actor_from_row(row) -> Actor:
    return Actor(user_id=row.id, username=row.username, is_admin=row.is_admin,
                 language=row.language, department_id=row.department_id)


_ACTOR_COLUMNS = (sys_user.c.id, sys_user.c.username, sys_user.c.is_admin, sys_user.c.language,
                  sys_user.c.department_id)


def authenticate(session: Session, username: str, password: str) -> Actor | None:
    row = session.execute(select(*_ACTOR_COLUMNS, sys_user.c.password_hash, sys_user.c.active)
                          .where(sys_user.c.username == username)).first()
    if row is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(row.password_hash, password) or not row.active:
        return None
    return actor_from_row(row)


def load_actor(session: Session, user_id: int) -> Actor | None:
    row = session.execute(select(*_ACTOR_COLUMNS).where(sys_user.c.id == user_id,
                                                        sys_user.c.active.is_(True))).first()
    return actor_from_row(row) if row else None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, actor: Actor) -> str:
    """A random bearer token; only its hash is stored."""
    token = secrets.token_urlsafe(32)
    session.execute(delete(sys_api_token).where(sys_api_token.c.expires_at < now()))
    session.execute(insert(sys_api_token).values(token_hash=_digest(token), user_id=actor.user_id,
                                                 created_at=now(),
                                                 expires_at=now() + TOKEN_LIFETIME))
    return token


def actor_for_token(session: Session, token: str) -> Actor | None:
    """One indexed read: the token's user, if the token is live and the user active."""
    row = session.execute(
        select(*_ACTOR_COLUMNS)
        .join(sys_api_token, sys_api_token.c.user_id == sys_user.c.id)
        .where(sys_api_token.c.token_hash == _digest(token), sys_api_token.c.expires_at > now(),
               sys_user.c.active.is_(True))).first()
    return actor_from_row(row) if row else None


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
