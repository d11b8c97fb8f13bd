"""Messages for people, written in English and translated where they are shown.

The engine and metadata layers know no Flask or Babel. A ``Message`` is the English text
(a ``str``, so JSON, logs and tests see plain text) that also keeps its template and
values, so the web layer can show it in the user's language. ``pybabel extract -k
Message`` collects the templates into the translation catalogue.
"""

from __future__ import annotations

from typing import Any


class Message(str):
    template: str
    params: dict[str, Any]

    def __new__(cls, template: str, **params: Any) -> Message:
        text = template % params if params else template
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
