"""Messages for people, written in English and translated where they are shown.

The engine and metadata layers know no Flask or Babel. A ``Message`` is the English text
(a ``str``, so JSON, logs and tests see plain text) that also keeps its template and
values, so the web layer can show it in the user's language. ``pybabel extract -k
Message`` collects the templates into the translation catalogue.
"""

from __future__ import annotations

from typing import Any

from metacrm.metadata.labels import Label


def named(name: str, label: Label) -> Label:
    """A word for messages: English keeps the API name (``customer``), which English
    messages have always used; Chinese reads the label (客户)."""
    return Label(en=name, zh=label.zh)


def in_language(params: dict[str, Any], lang: str) -> dict[str, Any]:
    """The params with each label in ``lang``."""
    return {k: v.get(lang) if isinstance(v, Label) else v for k, v in params.items()}


class Message(str):
    """Its params may be bilingual ``Label``s (a field's, a stage's): the English text
    reads their ``en``; the web layer words them in the user's language."""

    template: str
    params: dict[str, Any]

    def __new__(cls, template: str, **params: Any) -> Message:
        text = template % in_language(params, "en") if params else template
        message = super().__new__(cls, text)
        message.template = template
        message.params = params
        return message


class LabelMessage(Message):
    """A message written in the metadata as a bilingual label (a validation rule's)."""

    label: Any

    def __new__(cls, label: Any) -> LabelMessage:
        message = str.__new__(cls, label.en)
        message.template = label.en.replace("%", "%%")
        message.params = {}
        message.label = label
        return message
