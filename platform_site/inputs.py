"""The base of every API request body: what it does not know is refused, and every error is told at once.

DRF ignores a field a serializer does not declare, so a misspelt or misplaced field (`cache_overrides`
sent to the website instead of its `/cdn/` route) answered 200 and changed nothing. Here it is a 400
naming the field, reported together with the declared fields' errors (one round trip to fix them all).
"""

from collections.abc import Mapping

from rest_framework import serializers

UNKNOWN_FIELD = "Unknown field: this endpoint does not accept it."


class Input(serializers.Serializer):
    """A request body (JSON object or form): unknown fields are a validation error like any other."""

    def to_internal_value(self, data):
        unknown = {}
        if isinstance(data, Mapping):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = {str(name): [UNKNOWN_FIELD] for name in data if name not in writable}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if unknown and isinstance(exc.detail, dict):
                raise serializers.ValidationError({**exc.detail, **unknown}) from exc
            raise
        if unknown:
            raise serializers.ValidationError(unknown)
        return value
