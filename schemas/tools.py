"""Tool declarations and `tool_choice`.

The tool types the gateway itself reads (function, custom, namespace, tool_search) are checked
for the fields it reads; their other fields, and every other tool type (web_search, types that do
not exist yet), are kept as the raw JSON the client sent.
"""
from __future__ import annotations

import re
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate

from schemas.fields import Identifier, JSONObject, Polymorphic, StrictBool, StrictString

FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def tool_name() -> StrictString:
    return StrictString(required=True, validate=validate.Regexp(
        FUNCTION_NAME, error="must be 1-128 characters of letters, digits, '_', '-', '.' or ':'"))


class KeptSchema(Schema):
    """Checks the fields the gateway reads; every other field is kept as the client sent it."""

    class Meta:
        unknown = INCLUDE

    type = StrictString(required=True)


class FunctionToolSchema(KeptSchema):
    name = tool_name()
    description = StrictString(allow_none=True)
    parameters = JSONObject(allow_none=True)
    strict = StrictBool(allow_none=True)
    defer_loading = StrictBool(allow_none=True)


class CustomFormatSchema(KeptSchema):
    syntax = StrictString(allow_none=True)
    definition = StrictString(allow_none=True)


class CustomToolSchema(KeptSchema):
    name = tool_name()
    description = StrictString(allow_none=True)
    format = fields.Nested(CustomFormatSchema, allow_none=True)
    defer_loading = StrictBool(allow_none=True)


class NamespaceToolSchema(KeptSchema):
    name = tool_name()
    description = StrictString(allow_none=True)
    tools = fields.List(Polymorphic({"function": FunctionToolSchema, "custom": CustomToolSchema}, keep_unknown=True),
                        required=True)


class ToolSearchToolSchema(KeptSchema):
    execution = StrictString(allow_none=True)
    description = StrictString(allow_none=True)
    parameters = JSONObject(allow_none=True)


TOOL_SCHEMAS = {"function": FunctionToolSchema, "custom": CustomToolSchema, "namespace": NamespaceToolSchema,
                "tool_search": ToolSearchToolSchema}


def tool_field() -> Polymorphic:
    return Polymorphic(TOOL_SCHEMAS, keep_unknown=True)


class ToolReferenceSchema(KeptSchema):
    """An entry of `allowed_tools.tools` (or a named `tool_choice`): names are strings."""

    name = Identifier(allow_none=True)
    namespace = Identifier(allow_none=True)


_REFERENCE = ToolReferenceSchema()


TOOL_CHOICE_MODES = ("auto", "none", "required")


class ToolChoiceField(fields.Field):
    """`"auto" | "none" | "required"`, a named tool, or `allowed_tools`; other typed forms raw."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            if value not in TOOL_CHOICE_MODES:
                raise ValidationError(f"must be one of {', '.join(TOOL_CHOICE_MODES)} or an object")
            return value
        if not isinstance(value, dict) or not isinstance(value.get("type"), str):
            raise ValidationError("must be a string or an object with a 'type'")
        kind = value["type"]
        if kind in ("function", "custom"):
            if not isinstance(value.get("name"), str):
                raise ValidationError({"name": [f"is required for a {kind} tool_choice"]})
            _REFERENCE.load(value)
        if kind == "allowed_tools":
            if value.get("mode", "auto") not in ("auto", "required"):
                raise ValidationError({"mode": ["must be 'auto' or 'required'"]})
            tools = value.get("tools")
            if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
                raise ValidationError({"tools": ["must be an array of tool references"]})
            errors = {}
            for index, ref in enumerate(tools):
                try:
                    _REFERENCE.load(ref)
                except ValidationError as error:
                    errors[index] = error.messages
            if errors:
                raise ValidationError({"tools": errors})
        return dict(value)
