"""Tool declarations and `tool_choice`.

Function tools are validated; every other tool type (namespace, custom, tool_search,
web_search, types that do not exist yet) is kept as the raw JSON the client sent.
"""
from __future__ import annotations

import re
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate

from schemas.fields import JSONObject, Polymorphic, StrictBool, StrictString

FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


class FunctionToolSchema(Schema):
    class Meta:
        unknown = INCLUDE

    type = StrictString(required=True)
    name = StrictString(required=True, validate=validate.Regexp(
        FUNCTION_NAME, error="must be 1-128 characters of letters, digits, '_', '-', '.' or ':'"))
    description = StrictString(allow_none=True)
    parameters = JSONObject(allow_none=True)
    strict = StrictBool(allow_none=True)


def tool_field() -> Polymorphic:
    return Polymorphic({"function": FunctionToolSchema}, keep_unknown=True)


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
        if kind in ("function", "custom") and not isinstance(value.get("name"), str):
            raise ValidationError({"name": [f"is required for a {kind} tool_choice"]})
        if kind == "allowed_tools":
            if value.get("mode", "auto") not in ("auto", "required"):
                raise ValidationError({"mode": ["must be 'auto' or 'required'"]})
            tools = value.get("tools")
            if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
                raise ValidationError({"tools": ["must be an array of tool references"]})
        return dict(value)
