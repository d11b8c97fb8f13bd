"""Signing in and out, and the user's language."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from metacrm.engine.access import credentials, login_throttle, users
from metacrm.ui.redirects import local_target
from metacrm.ui.runtime import SessionUser, db

bp = Blueprint("auth", __name__)

SESSION_KEY = "sid"  # the browser session's id in the signed cookie


def _safe_next(target: str | None) -> str:
    """Only local paths: never redirect a user to another site after login."""
    return local_target(target, url_for("pages.home"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("pages.home"))
    error = None
    status = 200
    headers: dict[str, str] = {}
    username = request.form.get("username", "").strip()
    if request.method == "POST":
        key = login_throttle.key_for(username, request.remote_addr)
        session_db = db()
        wait = login_throttle.wait_seconds(session_db, key)
        if wait:
            error = _("Too many failed attempts. Try again in %(seconds)d seconds.",
                      seconds=wait)
            status, headers = 429, {"Retry-After": str(wait)}
        else:
            actor = users.authenticate(session_db, username, request.form.get("password", ""))
            if actor is None:
                login_throttle.record_failure(session_db, key)
                error, status = _("Wrong username or password."), 401
            else:
                login_throttle.clear(session_db, key)
                session_id = credentials.start_session(session_db, actor.user_id)
                session_db.commit()
                session.clear()
                session[SESSION_KEY] = session_id
                login_user(SessionUser(actor))
                return redirect(_safe_next(request.args.get("next")))
        session_db.commit()
    return render_template("login.html", error=error, username=username), status, headers


@bp.post("/logout")
@login_required
def logout():
    """Ends this browser's session on the server too: a copy of the cookie stops working."""
    session_id = session.get(SESSION_KEY)
    if isinstance(session_id, str):
        credentials.end_session(db(), session_id)
        db().commit()
    logout_user()
    session.clear()
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.post("/sign-out-everywhere")
@login_required
def sign_out_everywhere():
    """Ends every browser session and API token of the user, this browser's too (a lost
    phone, a shared computer): every copy of a cookie or token stops working."""
    credentials.end_everything(db(), current_user.actor.user_id)
    db().commit()
    logout_user()
    session.clear()
    flash(_("You have signed out on every device."), "info")
    return redirect(url_for("auth.login"))


@bp.post("/language")
def set_language():
    language = request.form.get("language", "")
    if language in ("zh", "en"):
        session["language"] = language
        if current_user.is_authenticated:
            users.set_language(db(), current_user.actor, language)
            db().commit()
    return redirect(_safe_next(request.form.get("next")))
