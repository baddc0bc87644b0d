"""Bodies of the Conversations API."""
from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, fields, validate

from schemas.fields import StrictString
from schemas.items import ItemField

_METADATA: dict[str, Any] = dict(keys=StrictString(validate=validate.Length(max=64)),
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
