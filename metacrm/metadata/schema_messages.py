"""JSON Schema errors as ``Message``s, so an admin reads them in the UI's language.

jsonschema words its errors in English only. The common kinds are rebuilt here from the
error's parts (the value, the allowed values, the pattern…) into templates that read
exactly as jsonschema's English, while the translation catalogue words them in Chinese.
A kind not listed keeps jsonschema's text as its one parameter.
"""

from __future__ import annotations

import re

from jsonschema.exceptions import ValidationError

from metacrm.metadata.messages import Message

LONGEST = 300  # characters of a message; a long value is cut short to fit
UNEXPECTED = re.compile(r"\((?P<keys>.*) (?P<verb>was|were) unexpected\)$", re.S)


def _required(error: ValidationError, value: str) -> Message:
    wanted = error.validator_value if isinstance(error.validator_value, list) else []
    key = next((repr(p) for p in wanted if error.message.startswith(f"{p!r} ")), None)
    return Message("%(key)s is a required property",
                   key=key or error.message.split(" is a required")[0])


def _type(error: ValidationError, value: str) -> Message:
    found = error.validator_value
    types = [found] if isinstance(found, str) else found if isinstance(found, list) else []
    return Message("%(value)s is not of type %(types)s", value=value,
                   types=", ".join(repr(t) for t in types))


def _additional(error: ValidationError, value: str) -> Message:
    found = UNEXPECTED.search(error.message)
    if found is None:
        return _other(error, value)
    if found["verb"] == "was":
        return Message("unknown key (%(keys)s was unexpected)", keys=found["keys"])
    return Message("unknown key (%(keys)s were unexpected)", keys=found["keys"])


def _length(error: ValidationError, value: str) -> Message:
    limit = error.validator_value
    if error.validator in ("minLength", "minItems"):
        if limit == 1:
            return Message("%(value)s should be non-empty", value=value)
        return Message("%(value)s is too short", value=value)
    if limit == 0:
        return Message("%(value)s is expected to be empty", value=value)
    return Message("%(value)s is too long", value=value)


def _other(error: ValidationError, value: str) -> Message:
    return Message("%(detail)s", detail=error.message)


KINDS = {
    "required": _required,
    "type": _type,
    "additionalProperties": _additional,
    "minLength": _length, "maxLength": _length, "minItems": _length, "maxItems": _length,
    "enum": lambda e, v: Message("%(value)s is not one of %(allowed)s", value=v,
                                 allowed=repr(e.validator_value)),
    "pattern": lambda e, v: Message("%(value)s does not match %(pattern)s", value=v,
                                    pattern=repr(e.validator_value)),
    "const": lambda e, v: Message("%(expected)s was expected", expected=repr(e.validator_value)),
    "minimum": lambda e, v: Message("%(value)s is less than the minimum of %(limit)s",
                                    value=v, limit=repr(e.validator_value)),
    "maximum": lambda e, v: Message("%(value)s is greater than the maximum of %(limit)s",
                                    value=v, limit=repr(e.validator_value)),
    "exclusiveMinimum": lambda e, v: Message(
        "%(value)s is less than or equal to the minimum of %(limit)s", value=v,
        limit=repr(e.validator_value)),
    "exclusiveMaximum": lambda e, v: Message(
        "%(value)s is greater than or equal to the maximum of %(limit)s", value=v,
        limit=repr(e.validator_value)),
    "uniqueItems": lambda e, v: Message("%(value)s has non-unique elements", value=v),
    "anyOf": lambda e, v: Message("%(value)s is not valid under any of the given schemas",
                                  value=v),
    "oneOf": lambda e, v: Message("%(value)s is not valid under any of the given schemas",
                                  value=v) if "not valid" in e.message else _other(e, v),
}


def schema_message(error: ValidationError) -> Message:
    """The error in words a template author reads, at most LONGEST characters."""
    build = KINDS.get(str(error.validator), _other)
    value = repr(error.instance)
    message = build(error, value)
    if len(message) <= LONGEST:
        return message
    if "value" in message.params:  # cut the value, keep the sentence
        cut = len(message) - LONGEST + 3
        shorter = value[:max(len(value) - cut, 20)] + "..."
        return build(error, shorter)
    return Message("%(detail)s", detail=message[:LONGEST - 3] + "...")
