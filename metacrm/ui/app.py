"""The Flask app factory."""

from __future__ import annotations

import json

from flask import Flask, request, session
from flask.sessions import SecureCookieSessionInterface
from flask_bootstrap import Bootstrap5
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from metacrm.config import Settings
from metacrm.engine import job_catalogue, write_hooks
from metacrm.engine.access.users import actor_for_session
from metacrm.engine.db import make_engine
from metacrm.engine.instance import ensure_system_tables
from metacrm.engine.schema.metastore import RegistryCache
from metacrm.engine.schema.version_signal import VersionSignal
from metacrm.ui import auth
from metacrm.ui.admin import home as admin
from metacrm.ui.api import admin as admin_api
from metacrm.ui.api import announcements as api_announcements
from metacrm.ui.api import flows as api_flows
from metacrm.ui.api import metadata as admin_meta_api
from metacrm.ui.api import records as api
from metacrm.ui.context import in_one_unit_of_work
from metacrm.ui.errors import register_error_handlers
from metacrm.ui.flows import announcements as announcements_page
from metacrm.ui.flows import approvals as approvals_page
from metacrm.ui.flows import notifications as notifications_page
from metacrm.ui.flows import path as workflow
from metacrm.ui.flows import todo
from metacrm.ui.i18n import init_i18n
from metacrm.ui.input import install as install_input_check
from metacrm.ui.records import pages, scenes, sharing
from metacrm.ui.runtime import Runtime, SessionUser, close_db, db, registry

MAX_BODY_BYTES = 2 * 1024 * 1024
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "style-src 'self' 'unsafe-inline'; script-src 'self'; "
                               "object-src 'none'; base-uri 'self'; form-action 'self'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


class SessionCookies(SecureCookieSessionInterface):
    """The session cookie is ``Secure`` whenever the request came over HTTPS (behind a
    proxy too, when ``METACRM_PROXY`` trusts its X-Forwarded-Proto)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(super().get_cookie_secure(app) or request.is_secure)


def create_app(settings: Settings | None = None, engine=None) -> Flask:
    settings = settings or Settings.from_env()
    write_hooks.install()
    job_catalogue.install()
    app = Flask(__name__)
    install_input_check(app)  # before any route: its ids are bounded to 64 bits
    app.config.update(SECRET_KEY=settings.secret_key, MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
                      TESTING=settings.testing, SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax", BOOTSTRAP_SERVE_LOCAL=True,
                      WTF_CSRF_TIME_LIMIT=None,
                      # no page asks flask-login to remember a user; were one to, its
                      # cookie would only travel over HTTPS and never reach scripts
                      REMEMBER_COOKIE_SECURE=True, REMEMBER_COOKIE_HTTPONLY=True,
                      REMEMBER_COOKIE_SAMESITE="Lax")
    app.session_interface = SessionCookies()
    if settings.behind_proxy:  # only then: anyone could send these headers otherwise
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    # A database server may drop idle connections; an SQLite file cannot.
    engine = engine or make_engine(settings.database_url,
                                   pool_pre_ping=not settings.database_url.startswith("sqlite"))
    ensure_system_tables(engine)
    signal = VersionSignal(settings.redis_url) if settings.redis_url else None
    app.extensions["metacrm"] = Runtime(
        settings, engine, RegistryCache(engine, settings.metadata_poll_seconds, signal))

    login = LoginManager(app)
    login.login_view = "auth.login"
    login.login_message = None

    @login.user_loader
    def _load_user(user_id: str):
        """The cookie's user while its session lives on the server (not signed out, no
        password change since)."""
        session_id = session.get(auth.SESSION_KEY)
        if not user_id.isdigit() or not isinstance(session_id, str):
            return None
        actor = actor_for_session(db(), int(user_id), session_id)
        return SessionUser(actor) if actor else None

    Bootstrap5(app)
    csrf = CSRFProtect(app)
    csrf.exempt(api.bp)  # bearer tokens, not cookies, authorise API writes
    csrf.exempt(admin_api.bp)
    csrf.exempt(admin_meta_api.bp)
    csrf.exempt(api_flows.bp)
    csrf.exempt(api_announcements.bp)
    init_i18n(app)
    # JSON for attribute values: a plain string, so Jinja escapes its quotes.
    app.jinja_env.filters["json_attr"] = lambda value: json.dumps(value, ensure_ascii=False)
    # The registry first: its version check must not wait for a second pooled connection
    # while the request's own session holds one (a deadlock under many threads).
    app.before_request(lambda: registry() and None)
    app.teardown_appcontext(close_db)
    register_error_handlers(app)
    for blueprint in (api.bp, auth.bp, pages.bp, scenes.bp, sharing.bp, admin.bp,
                      admin_api.bp, admin_meta_api.bp, api_flows.bp, workflow.bp, approvals_page.bp,
                      todo.bp, notifications_page.bp, announcements_page.bp,
                      api_announcements.bp):
        app.register_blueprint(blueprint)
    # The JSON API's views each run in one unit of work: none of them commits itself.
    for endpoint, view in list(app.view_functions.items()):
        if endpoint.split(".")[0] in {api.bp.name, api_flows.bp.name, admin_api.bp.name,
                                      api_announcements.bp.name}:
            app.view_functions[endpoint] = in_one_unit_of_work(view)
    # The record page's panels beyond its fields, in the order they show.
    app.extensions["metacrm"].panels.update(path=workflow.path_panel,
                                            approvals=approvals_page.record_panel)

    @app.after_request
    def _security_headers(response):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return app
