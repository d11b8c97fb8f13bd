"""Languages: every UI string through Flask-Babel, every metadata label from ``{en, zh}``."""

from __future__ import annotations

from flask import Flask, g, request, session
from flask_babel import Babel, get_locale, gettext
from flask_login import current_user

from metacrm.engine.access import users
from metacrm.engine.actor import Actor
from metacrm.metadata.labels import LANGUAGES, Label
from metacrm.metadata.messages import LabelMessage, Message, in_language
from metacrm.ui.runtime import db

DEFAULT_LANGUAGE = "zh"  # the sample data and its users are Chinese


def select_language() -> str:
    """The caller's language: a signed-in user's setting (the API's caller by bearer token
    too), else the one chosen on the page, else Accept-Language. A script that names no
    language reads the API in English, a browser reads the pages in Chinese."""
    api = request.path.startswith("/api/")
    caller = g.get("actor") or (_bearer_caller() if api else None)
    if caller is not None:
        return caller.language
    if current_user and current_user.is_authenticated:
        return current_user.actor.language
    chosen = session.get("language")
    if chosen in LANGUAGES:
        return chosen
    default = "en" if api else DEFAULT_LANGUAGE
    return request.accept_languages.best_match(LANGUAGES, default) \
        if request.accept_languages else default


def _bearer_caller() -> Actor | None:
    """The bearer token's user, for a message worded before the view looked the token up
    (a malformed body is refused first)."""
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    try:
        return users.actor_for_token(db(), header[7:].strip())
    except Exception:  # noqa: BLE001 - wording an error after a failed statement
        return None


def language() -> str:
    return str(get_locale() or DEFAULT_LANGUAGE)[:2]


def label(value: Label | dict | None) -> str:
    """A metadata label in the current language."""
    if value is None:
        return ""
    if isinstance(value, dict):
        value = Label.of(value)
    return value.get(language())


def translate(message: str) -> str:
    """An engine message in the user's language (plain strings pass through)."""
    if isinstance(message, LabelMessage):
        return message.label.get(language())
    if isinstance(message, Message):
        params = {k: translate(v) if isinstance(v, Message) else v
                  for k, v in message.params.items()}  # a problem may quote another
        return gettext(message.template, **in_language(params, language()))
    return message


def init_i18n(app: Flask) -> None:
    Babel(app, locale_selector=select_language, default_translation_directories="translations")
    app.jinja_env.filters["label"] = label
    app.jinja_env.globals["translate"] = translate
    app.jinja_env.globals["current_language"] = language
