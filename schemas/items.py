"""Input items and content parts.

Known item types are validated (required fields, value types); everything else a client sends
is kept verbatim (`unknown = INCLUDE`) so replayed items keep their ids, `status`, `phase`,
`namespace` and future fields. Unknown item types stay raw JSON.
"""
from __future__ import annotations

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema

from schemas.fields import Identifier, Polymorphic, StrictString, StringOrList, check_raw_id
from schemas.tools import tool_field

ROLES = ("user", "assistant", "system", "developer")


class PartSchema(Schema):
    class Meta:
        unknown = INCLUDE

    type = StrictString(required=True)


class TextPartSchema(PartSchema):
    text = StrictString(required=True)


class InputImagePartSchema(PartSchema):
    image_url = StrictString(allow_none=True)
    file_id = StrictString(allow_none=True)
    detail = StrictString(validate=validate.OneOf(("auto", "low", "high", "original")))

    @validates_schema
    def _has_source(self, data: dict, **kwargs) -> None:
        if not data.get("image_url") and not data.get("file_id"):
            raise ValidationError("input_image needs image_url or file_id", field_name="image_url")


class InputFilePartSchema(PartSchema):
    file_id = StrictString(allow_none=True)
    file_data = StrictString(allow_none=True)
    file_url = StrictString(allow_none=True)
    filename = StrictString(allow_none=True)


class RefusalPartSchema(PartSchema):
    refusal = StrictString(required=True)


CONTENT_PARTS = {
    "input_text": TextPartSchema,
    "output_text": TextPartSchema,
    "text": TextPartSchema,
    "summary_text": TextPartSchema,
    "reasoning_text": TextPartSchema,
    "input_image": InputImagePartSchema,
    "input_file": InputFilePartSchema,
    "refusal": RefusalPartSchema,
}


def content_list() -> fields.List:
    return fields.List(Polymorphic(CONTENT_PARTS, keep_unknown=False))


class ItemSchema(Schema):
    class Meta:
        unknown = INCLUDE

    type = StrictString(required=True)
    id = Identifier(allow_none=True)


class MessageItemSchema(ItemSchema):
    role = StrictString(required=True, validate=validate.OneOf(ROLES))
    content = StringOrList(content_list(), required=True)
    # Assistant messages of newer models say which they are; replayed as sent, kept when stored.
    phase = StrictString(allow_none=True, validate=validate.OneOf(("commentary", "final_answer")))


class FunctionCallItemSchema(ItemSchema):
    call_id = Identifier(required=True, validate=validate.Length(min=1))
    name = StrictString(required=True, validate=validate.Length(min=1))
    arguments = StrictString(required=True)


class CallOutputItemSchema(ItemSchema):
    call_id = Identifier(required=True, validate=validate.Length(min=1))
    output = StringOrList(content_list(), required=True)


class CustomToolCallItemSchema(ItemSchema):
    call_id = Identifier(required=True, validate=validate.Length(min=1))
    name = StrictString(required=True, validate=validate.Length(min=1))
    input = StrictString(required=True)


class ReasoningItemSchema(ItemSchema):
    summary = fields.List(Polymorphic(CONTENT_PARTS, keep_unknown=True), load_default=list)
    content = fields.List(Polymorphic(CONTENT_PARTS, keep_unknown=True), allow_none=True)
    encrypted_content = StrictString(allow_none=True)


class ItemReferenceSchema(ItemSchema):
    id = Identifier(required=True)


class AdditionalToolsItemSchema(ItemSchema):
    tools = fields.List(tool_field(), required=True)


class ToolSearchCallItemSchema(ItemSchema):
    call_id = Identifier(required=True, validate=validate.Length(min=1))
    arguments = fields.Raw(allow_none=True)
    execution = StrictString(allow_none=True)


class ToolSearchOutputItemSchema(ItemSchema):
    call_id = Identifier(allow_none=True)
    tools = fields.List(tool_field(), load_default=list)
    execution = StrictString(allow_none=True)


ITEM_SCHEMAS = {
    "message": MessageItemSchema,
    "function_call": FunctionCallItemSchema,
    "function_call_output": CallOutputItemSchema,
    "custom_tool_call": CustomToolCallItemSchema,
    "custom_tool_call_output": CallOutputItemSchema,
    "reasoning": ReasoningItemSchema,
    "item_reference": ItemReferenceSchema,
    "additional_tools": AdditionalToolsItemSchema,
    "tool_search_call": ToolSearchCallItemSchema,
    "tool_search_output": ToolSearchOutputItemSchema,
}


def item_type(value: dict) -> str | None:
    """Short messages (`{"role","content"}`) have no `type`; they are messages."""
    if "type" not in value and "role" in value:
        return "message"
    return value.get("type")


class ItemField(Polymorphic):
    def __init__(self, **kwargs) -> None:
        super().__init__(ITEM_SCHEMAS, type_of=item_type, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, dict) and "type" not in value and "role" in value:
            value = {"type": "message", **value}
        item = super()._deserialize(value, attr, data, **kwargs)
        check_raw_id(item)
        return item
