"""The base of every API request body: what it does not know is refused, and every error is told at once.

DRF ignores a field a serializer does not declare, so a misspelt or misplaced field (`cache_overrides`
sent to the website instead of its `/cdn/` route) answered 200 and changed nothing. Here it is a 400
naming the field, reported together with the declared fields' errors (one round trip to fix them all).
"""

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


def _json_type_error(field, value) -> str | None:
    if value is None:
        return None  # the field's own allow_null decides
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
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if refused and isinstance(exc.detail, dict):
                raise serializers.ValidationError({**exc.detail, **refused}) from exc
            raise
        if refused:
            raise serializers.ValidationError(refused)
        return value
