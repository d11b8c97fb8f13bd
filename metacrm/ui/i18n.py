"""Languages: every UI string through Flask-Babel, every metadata label from ``{en, zh}``."""

from __future__ import annotations

from flask import Flask, g, request, session
from flask_babel import Babel, get_locale, gettext
from flask_login import current_user

from metacrm.metadata.labels import LANGUAGES, Label
from metacrm.metadata.messages import LabelMessage, Message, in_language

DEFAULT_LANGUAGE = "zh"  # the sample data and its users are Chinese


def select_language() -> str:
    if (caller := g.get("actor")) is not None:  # the API's caller, by bearer token
        return caller.language
    if current_user and current_user.is_authenticated:
        return current_user.actor.language
    chosen = session.get("language")
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES, DEFAULT_LANGUAGE) \
        if request.accept_languages else DEFAULT_LANGUAGE


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
