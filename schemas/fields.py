"""Fields for the Responses API's polymorphic values.

`Polymorphic` picks a schema by the value's `type`; types it does not know are kept as raw JSON
objects (never rejected) so that newer clients' tools and items survive a round trip.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from marshmallow import Schema, ValidationError, fields


class Polymorphic(fields.Field):
    def __init__(self, schemas: Mapping[str, type[Schema]], *,
                 type_of: Callable[[dict], str | None] = lambda v: v.get("type"),
                 keep_unknown: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.schemas = {name: cls() for name, cls in schemas.items()}
        self.type_of = type_of
        self.keep_unknown = keep_unknown

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, dict):
            raise ValidationError("must be a JSON object")
        kind = self.type_of(value)
        if not isinstance(kind, str) or not kind:
            raise ValidationError({"type": ["is required and must be a string"]})
        schema = self.schemas.get(kind)
        if schema is None:
            if self.keep_unknown:
                return dict(value)
            raise ValidationError({"type": [f"unsupported type {kind!r}"]})
        return schema.load(value)


class StringOrList(fields.Field):
    """A string, or a list validated by the given list field (e.g. message content parts)."""

    def __init__(self, list_field: fields.List, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.list_field = list_field

    def _bind_to_schema(self, field_name: str, parent: Any) -> None:
        super()._bind_to_schema(field_name, parent)
        self.list_field._bind_to_schema(field_name, parent)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return value
        if isinstance(value, list):
            return self.list_field.deserialize(value, attr, data, **kwargs)
        raise ValidationError("must be a string or an array")


class StrictString(fields.String):
    """A string that is not silently coerced from numbers."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, str):
            raise ValidationError("must be a string")
        return value


class Identifier(StrictString):
    """An id or name the gateway stores in a column or looks up by (model, ids, call ids): a
    string without U+0000, which PostgreSQL cannot hold in text."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        value = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in value:
            raise ValidationError("must not contain U+0000")
        return value


def check_raw_id(value: dict) -> None:
    """An item kept as raw JSON is stored and listed by its `id`: a string without U+0000, or none."""
    item_id = value.get("id")
    if item_id is not None and (not isinstance(item_id, str) or "\x00" in item_id):
        raise ValidationError({"id": ["must be a string without U+0000"]})


class JSONObject(fields.Dict):
    """A JSON object kept verbatim (tool parameters, JSON schemas, raw tool declarations)."""


class StrictBool(fields.Boolean):
    """Only JSON true/false; `"yes"` or `1` is a wrong type, as in the OpenAI API."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, bool):
            raise ValidationError("must be a boolean")
        return value


class StrictNumber(fields.Float):
    """A JSON number (not a numeric string, not a boolean)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError("must be a number")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictInt(fields.Integer):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool):
            raise ValidationError("must be an integer")
        return super()._deserialize(value, attr, data, **kwargs)
