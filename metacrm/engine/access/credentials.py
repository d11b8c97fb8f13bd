"""What proves who a caller is, besides the password: browser sessions and API tokens.

Both are random secrets of which only a hash is stored, so each can be ended on the
server: signing out ends one browser session, revoking a token ends that token, and a
password change or reset (or disabling the user) ends every session and token the user
has, on every device.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

from metacrm import clock
from metacrm.engine.db import affected
from metacrm.engine.systables import sys_api_token, sys_session

__all__ = ["SESSION_LIFETIME", "TOKEN_LIFETIME", "digest", "end_everything", "end_session",
           "new_secret", "revoke_token", "start_session"]

# Scripts ask for a new token with their credentials at no cost, so a short life limits
# what a leaked token is worth; METACRM_TOKEN_DAYS changes it.
TOKEN_LIFETIME = dt.timedelta(days=7)
# A browser signs in again after a week at most, however long it stays open.
SESSION_LIFETIME = dt.timedelta(days=7)



def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def start_session(session: Session, user_id: int,
                  lifetime: dt.timedelta = SESSION_LIFETIME) -> str:
    """A new browser session of the user: the id for the cookie (only its hash is kept)."""
    session.execute(delete(sys_session).where(sys_session.c.expires_at < clock.now()))
    session_id = new_secret()
    session.execute(insert(sys_session).values(session_hash=digest(session_id), user_id=user_id,
                                               created_at=clock.now(), expires_at=clock.now() + lifetime))
    return session_id


def end_session(session: Session, session_id: str) -> None:
    session.execute(delete(sys_session).where(sys_session.c.session_hash == digest(session_id)))


def revoke_token(session: Session, token: str) -> bool:
    """End one API token; False if there was no such token."""
    result = session.execute(delete(sys_api_token)
                             .where(sys_api_token.c.token_hash == digest(token)))
    return bool(affected(result))


def end_everything(session: Session, user_id: int) -> int:
    """End every browser session and API token of the user; how many were ended."""
    ended = session.execute(delete(sys_session).where(sys_session.c.user_id == user_id))
    revoked = session.execute(delete(sys_api_token).where(sys_api_token.c.user_id == user_id))
    return affected(ended) + affected(revoked)
