"""The base of every API request body: what it does not know is refused, and every error is told at once.

DRF ignores a field a serializer does not declare, so a misspelt or misplaced field (`cache_overrides`
sent to the website instead of its `/cdn/` route) answered 200 and changed nothing. Here it is a 400
naming the field, reported together with the declared fields' errors (one round trip to fix them all).
"""

import re
import unicodedata
from collections.abc import Mapping

from django.core.validators import RegexValidator
from django.http import QueryDict
from rest_framework import serializers

UNKNOWN_FIELD = "Unknown field: this endpoint does not accept it."

# The JSON type each kind of field takes, exactly: DRF would also take 0 for a name, "12" or 12.0 for a
# number, "yes" for a boolean and an integer for a UUID, which the published schema does not allow.
_JSON_TYPES = (
    (serializers.BooleanField, (bool,), "a boolean"),
    (serializers.IntegerField, (int,), "an integer"),
    (serializers.FloatField, (int, float), "a number"),
    (serializers.CharField, (str,), "a string"),
    (serializers.UUIDField, (str,), "a string"),
    (serializers.DateTimeField, (str,), "a string"),
)


# Characters that make text read differently from what it holds (Trojan Source, CVE-2021-42574): bidi
# embeddings, overrides, isolates and marks; and control characters but a tab (a newline forges a line in a
# log or a table cell; NUL cannot be stored). Zero-width joiners stay: emoji sequences need them.
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
HIDING = re.compile(f"[\x00-\x08\x0a-\x1f\x7f-\x9f{BIDI_CONTROLS}]")
# The same rule for the published description (ECMA-262 and Python alike).
PLAIN_TEXT_PATTERN = (
    "^[^\\u0000-\\u0008\\u000a-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069]*$"
)


# Free text that may span lines (a deployment's description is often a commit message, a reason a short
# note): line breaks and tabs are what it holds, every other hiding character is still refused.
MULTILINE_HIDING = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{BIDI_CONTROLS}]")
MULTILINE_TEXT_PATTERN = (
    "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f\\u202a-\\u202e"
    "\\u2066-\\u2069]*$"
)


class MultilineText(serializers.CharField):
    """A free-text field that may span lines; its published pattern says so (core/api_schema.py leaves a
    field with a pattern of its own as it is)."""

    hiding = MULTILINE_HIDING

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", True)
        super().__init__(**kwargs)
        self.validators.append(RegexValidator(MULTILINE_TEXT_PATTERN))


def hidden_text_error(value: str, hiding: re.Pattern = HIDING) -> str | None:
    """Why a text value of a request hides what it holds (checked as sent, before any trimming), or None."""
    found = hiding.search(value)
    if found is None:
        return None
    char = found.group()
    kind = "Control" if unicodedata.category(char) == "Cc" else "Bidirectional control"
    return f"{kind} characters are not allowed: U+{ord(char):04X}."


def _text_error(field, value) -> str | None:
    """hidden_text_error for a field's value as sent, items of lists and values of objects included."""
    if isinstance(field, serializers.ListField) and isinstance(value, list):
        return next(filter(None, (_text_error(field.child, item) for item in value)), None)
    if isinstance(field, serializers.DictField) and isinstance(value, dict):
        return next(filter(None, (_text_error(field.child, item) for item in value.values())), None)
    # A field that keeps its whitespace (a site path) has a syntax of its own.
    if isinstance(field, serializers.CharField) and field.trim_whitespace and isinstance(value, str):
        return hidden_text_error(value, getattr(field, "hiding", HIDING))
    return None


class QueryInteger(serializers.IntegerField):
    """An integer in a query string as the description says one: ASCII digits (Python's int() also takes
    `１`, `١٢`, `1_0`, ` 5` and `+5`)."""

    def to_internal_value(self, data):
        if isinstance(data, str) and not re.fullmatch(r"-?[0-9]+", data):
            self.fail("invalid")
        return super().to_internal_value(data)


class LimitOverride(serializers.IntegerField):
    """A limit in place of a default one (the tier's, the plan's, the tenant's): optional, a whole number
    from 1 up to `max_value`, and null goes back to the default."""

    def __init__(self, *, max_value: int, **kwargs):
        super().__init__(required=False, allow_null=True, min_value=1, max_value=max_value, **kwargs)


def _json_type_error(field, value) -> str | None:
    if value is None:
        return None  # the field's own allow_null decides
    if isinstance(field, serializers.DateTimeField | serializers.UUIDField) and isinstance(value, str):
        if not value.isascii():  # Python's parsers take any script's digits (`٢٠٣٠-01-01`)
            return "Must be written in ASCII."
    if isinstance(field, serializers.ListField) and isinstance(value, list):
        return next(filter(None, (_json_type_error(field.child, item) for item in value)), None)
    if isinstance(field, serializers.DictField) and isinstance(value, dict):
        return next(filter(None, (_json_type_error(field.child, item) for item in value.values())), None)
    for kind, types, name in _JSON_TYPES:
        if isinstance(field, kind):
            wrong = not isinstance(value, types) or (bool not in types and isinstance(value, bool))
            return f"Must be {name}." if wrong else None
    return None


class Input(serializers.Serializer):
    """A request body (JSON object or form): refused fields, and JSON values of the wrong type, are
    validation errors like any other."""

    def to_internal_value(self, data):
        refused = {}
        if isinstance(data, Mapping):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            refused = {str(name): [UNKNOWN_FIELD] for name in data if name not in writable}
        if isinstance(data, dict) and not isinstance(data, QueryDict):  # JSON (a form's values are strings)
            for name, field in self.fields.items():
                message = _json_type_error(field, data[name]) if name in data and not field.read_only else None
                if message:
                    refused[name] = [message]
        if isinstance(data, Mapping):
            for name, field in self.fields.items():
                if name in data and name not in refused and not field.read_only:
                    message = _text_error(field, data[name])
                    if message:
                        refused[name] = [message]
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if refused and isinstance(exc.detail, dict):
                raise serializers.ValidationError({**exc.detail, **refused}) from exc
            raise
        if refused:
            raise serializers.ValidationError(refused)
        return value
