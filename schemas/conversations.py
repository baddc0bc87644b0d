"""Bodies of the Conversations API."""
from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from gateway.errors import APIError
from schemas.errors import validation_error_to_api
from schemas.fields import StrictString
from schemas.items import ItemField

_METADATA = dict(keys=StrictString(validate=validate.Length(max=64)),
                 values=StrictString(validate=validate.Length(max=512)),
                 validate=validate.Length(max=16, error="may hold at most 16 key-value pairs"))


class ConversationCreateSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    items = fields.List(ItemField(), load_default=list,
                        validate=validate.Length(max=20, error="at most 20 items per request"))
    metadata = fields.Dict(allow_none=True, load_default=None, **_METADATA)


class ConversationUpdateSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    metadata = fields.Dict(required=True, **_METADATA)


class ConversationItemsSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    items = fields.List(ItemField(), required=True,
                        validate=validate.Length(min=1, max=20, error="between 1 and 20 items per request"))


def load(schema: Schema, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise APIError(400, "The request body must be a JSON object.", code="invalid_json")
    try:
        return schema.load(body)
    except ValidationError as exc:
        raise validation_error_to_api(exc) from exc
