"""Business settings (业务参数): typed values a template declares and admins edit.

A template ships ``settings:`` (name, type, default, ``{en, zh}`` label, help, range or
options); an admin's value is kept in the document's overlay layer as ``value``, so it is
a metadata version like any other change and a template upgrade keeps it. Expressions
read a setting with ``setting("name")``, bound when the registry compiles them (a new
value is a new version, hence a new registry: live, without a restart); reminder rules
take one as their offset in days.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from metacrm.metadata import expressions as ex
from metacrm.metadata.fieldtypes import InvalidValue
from metacrm.metadata.labels import Label
from metacrm.metadata.loader import Document
from metacrm.metadata.messages import Message
from metacrm.metadata.problems import Problem

__all__ = ["SETTING_TYPES", "SettingDef", "SettingType", "build_setting", "check_settings",
           "expression_settings"]


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise InvalidValue("a whole number is needed")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise InvalidValue("a whole number is needed") from None
    if number != number.to_integral_value() or abs(number) > 10 ** 12:
        raise InvalidValue("a whole number is needed")
    return int(number)


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise InvalidValue("a number is needed")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidValue("a number is needed") from None
    if not number.is_finite() or abs(number) > 10 ** 15:
        raise InvalidValue("a number is needed")
    return number


_TRUE, _FALSE = {"1", "true", "on", "yes"}, {"0", "false", "off", "no", ""}


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise InvalidValue("yes or no is needed")


def _text(value: Any) -> str:
    text = str(value).strip()
    if len(text) > 2000 or "\x00" in text:
        raise InvalidValue("the text is too long (at most %(limit)d characters)", limit=2000)
    return text


@dataclass(frozen=True)
class SettingType:
    """One entry of the catalogue: how a value is read, typed in expressions, and kept
    in JSON (a decimal as text, so no float creeps in)."""

    name: str
    coerce: Callable[[Any], Any]
    expression_type: str
    to_json: Callable[[Any], Any] = lambda v: v
    ranged: bool = False


SETTING_TYPES: dict[str, SettingType] = {t.name: t for t in (
    SettingType("integer", _integer, ex.NUMBER, ranged=True),
    SettingType("decimal", _decimal, ex.NUMBER, to_json=str, ranged=True),
    SettingType("boolean", _boolean, ex.BOOLEAN),
    SettingType("text", _text, ex.TEXT),
    SettingType("select", _text, ex.TEXT),
)}


@dataclass(frozen=True)
class SettingDef:
    name: str
    key: str
    type: str
    label: Label
    default: Any
    value: Any  # the admin's value, else the default
    help: Label | None = None
    group: Label | None = None
    unit: Label | None = None
    min: Decimal | None = None
    max: Decimal | None = None
    options: tuple[tuple[str, Label], ...] = ()

    @property
    def kind(self) -> SettingType:
        return SETTING_TYPES[self.type]

    @property
    def changed(self) -> bool:
        return self.value != self.default

    def coerce(self, raw: Any) -> Any:
        """A value as an admin typed it, checked against the type, range and options;
        InvalidValue says what is wrong."""
        value = self.kind.coerce(raw)
        if self.kind.ranged:
            if self.min is not None and value < self.min:
                raise InvalidValue("the value must be at least %(min)s", min=str(self.min))
            if self.max is not None and value > self.max:
                raise InvalidValue("the value must be at most %(max)s", max=str(self.max))
        if self.options and value not in {v for v, _ in self.options}:
            raise InvalidValue("'%(value)s' is not one of the options", value=value)
        return value


def _bound(raw: Any) -> Decimal | None:
    return None if raw is None else Decimal(str(raw))


def build_setting(raw: Mapping[str, Any]) -> SettingDef:
    """A validated document item as a setting; a stored value that no longer fits (the
    template narrowed the range) falls back to the default."""
    kind = SETTING_TYPES[raw["type"]]
    base = SettingDef(
        name=raw["name"], key=raw.get("key", raw["name"]), type=raw["type"],
        label=Label.of(raw["label"]), default=None, value=None,
        help=Label.of(raw["help"]) if raw.get("help") else None,
        group=Label.of(raw["group"]) if raw.get("group") else None,
        unit=Label.of(raw["unit"]) if raw.get("unit") else None,
        min=_bound(raw.get("min")), max=_bound(raw.get("max")),
        options=tuple((o["value"], Label.of(o["label"])) for o in raw.get("options", ())))
    try:
        default = kind.coerce(raw["default"])
    except InvalidValue:
        default = None
    value = default
    if "value" in raw:
        try:
            value = base.coerce(raw["value"])
        except InvalidValue:
            value = default
    return SettingDef(**{**base.__dict__, "default": default, "value": value})


def expression_settings(settings: Iterable[SettingDef]) -> dict[str, tuple[str, Any]]:
    """What ``setting("name")`` reads: each setting's expression type and value."""
    return {s.name: (s.kind.expression_type, s.value) for s in settings}


def check_settings(documents: Iterable[Document]) -> tuple[dict[str, SettingDef],
                                                            list[Problem]]:
    """The settings a template set declares, and what is wrong with them: a name declared
    twice, a default that does not fit its type, range or options."""
    found: dict[str, SettingDef] = {}
    problems: list[Problem] = []
    for doc in documents:
        for i, raw in enumerate(doc.content["settings"]):
            path = doc.where(["settings", i])
            if raw["name"] in found:
                problems.append(Problem("setting.duplicate", doc.source, f"{path}.name",
                                        Message("setting '%(name)s' is declared twice",
                                                name=raw["name"])))
                continue
            if raw["type"] == "select" and not raw.get("options"):
                problems.append(Problem("setting.options", doc.source, f"{path}.options",
                                        Message("a select setting needs options")))
            setting = build_setting(raw)
            try:
                setting.coerce(raw["default"])
            except InvalidValue as exc:
                problems.append(Problem("setting.default", doc.source, f"{path}.default",
                                        exc.message))
            found[raw["name"]] = setting
    return found, problems
