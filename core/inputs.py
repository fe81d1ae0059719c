"""The base of every API request body: what it does not know is refused, and every error is told at once.

DRF ignores a field a serializer does not declare, so a misspelt or misplaced field (`cache_overrides`
sent to the website instead of its `/cdn/` route) answered 200 and changed nothing. Here it is a 400
naming the field, reported together with the declared fields' errors (one round trip to fix them all).
"""

import functools
import re
import sys
import unicodedata
from collections.abc import Mapping

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
# embeddings, overrides, isolates and marks. Zero-width joiners stay: emoji sequences need them.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_INVISIBLE = ("Cc", "Cf", "Zs", "Zl", "Zp")


def plain_text(value) -> None:
    """The validator of every text field of a request body: text shows what it holds. No bidirectional
    control, no control character but a tab (a newline would forge a line in a log or a table cell), and
    something visible."""
    if not isinstance(value, str):
        return
    for char in value:
        if char in BIDI_CONTROLS:
            raise serializers.ValidationError(f"Bidirectional control characters are not allowed: U+{ord(char):04X}.")
        if char != "\t" and unicodedata.category(char) == "Cc":
            raise serializers.ValidationError(f"Control characters are not allowed: U+{ord(char):04X}.")
    if value and all(unicodedata.category(char) in _INVISIBLE for char in value):
        raise serializers.ValidationError("Nothing visible: give a visible character.")


def _char_class(chars: list[str]) -> str:
    """A regex character class body for these characters, in ranges (\\uXXXX escapes on the BMP)."""

    def escape(char: str) -> str:
        return f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else char

    parts, start, previous = [], None, None
    for char in sorted(chars) + [None]:
        if start is not None and (char is None or ord(char) != ord(previous) + 1):
            parts.append(escape(start) if start == previous else f"{escape(start)}-{escape(previous)}")
            start = None
        if char is not None and start is None:
            start = char
        previous = char
    return "".join(parts)


@functools.cache
def plain_text_pattern() -> str:
    """`plain_text` as a regex, for the published description: what DRF trims at either end (whitespace,
    control characters among it), then text holding a visible character and no refused one."""
    forbidden, invisible, space = [], [], []
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        category = unicodedata.category(char)
        if category == "Cs":
            continue
        if char in BIDI_CONTROLS or (category == "Cc" and char != "\t"):
            forbidden.append(char)
        if category in _INVISIBLE:
            invisible.append(char)
        if char.isspace():
            space.append(char)
    s, f, v = _char_class(space), _char_class(forbidden), _char_class(invisible)
    return f"^[{s}]*(?:[^{f}]*[^{v}][^{f}]*)?[{s}]*$"


def _text_fields(field):
    if isinstance(field, serializers.ListField | serializers.DictField):
        yield from _text_fields(field.child)
    elif isinstance(field, serializers.CharField) and field.trim_whitespace:
        # (A field that keeps its whitespace, as a site path, has a syntax of its own.)
        yield field


class QueryInteger(serializers.IntegerField):
    """An integer in a query string as the description says one: ASCII digits (Python's int() also takes
    `１`, `١٢`, `1_0`, ` 5` and `+5`)."""

    def to_internal_value(self, data):
        if isinstance(data, str) and not re.fullmatch(r"-?[0-9]+", data):
            self.fail("invalid")
        return super().to_internal_value(data)


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

    def get_fields(self):
        fields = super().get_fields()
        for field in fields.values():
            for text in _text_fields(field):
                text.validators.append(plain_text)
        return fields

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
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if refused and isinstance(exc.detail, dict):
                raise serializers.ValidationError({**exc.detail, **refused}) from exc
            raise
        if refused:
            raise serializers.ValidationError(refused)
        return value
