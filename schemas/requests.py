"""The `POST /v1/responses` body (also the body of a WebSocket `response.create` frame).

Unknown top-level fields are ignored (clients such as Codex send `client_metadata`), unknown
tool and item types are kept raw. Loading returns plain dicts the engine works with.
"""
from __future__ import annotations

import logging
from typing import Any

from marshmallow import EXCLUDE, INCLUDE, Schema, ValidationError, fields, validate, validates

from schemas.errors import load_body
from schemas.fields import Identifier, JSONObject, StrictBool, StrictInt, StrictNumber, StrictString, StringOrList
from schemas.items import ItemField
from schemas.tools import ToolChoiceField, tool_field

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
# Bounds on what one request may carry, far above what Codex sends (a long session's whole history
# is a few thousand items; its tools a few dozen plus namespaces), so a careless client fails fast.
MAX_INPUT_ITEMS = 20_000
MAX_TOOLS = 1_000


log = logging.getLogger("gateway.requests")


class TextFormatSchema(Schema):
    class Meta:
        unknown = INCLUDE

    type = StrictString(required=True, validate=validate.OneOf(("text", "json_object", "json_schema")))
    name = StrictString()
    schema = JSONObject()
    description = StrictString(allow_none=True)
    strict = StrictBool(allow_none=True)

    @validates("name")
    def _name(self, value: str, **kwargs) -> None:
        if not value:
            raise ValidationError("must not be empty")


class TextSchema(Schema):
    class Meta:
        unknown = INCLUDE

    format = fields.Nested(TextFormatSchema)
    verbosity = StrictString(allow_none=True, validate=validate.OneOf(("low", "medium", "high")))


class ContextManagementSchema(Schema):
    """`context_management` entries; `compaction` with `compact_threshold` compacts first once the
    input reaches that many tokens (gateway/compaction.py)."""

    class Meta:
        unknown = EXCLUDE

    type = StrictString(required=True, validate=validate.OneOf(("compaction",)))
    compact_threshold = StrictInt(allow_none=True, load_default=None, validate=validate.Range(min=1))


class ReasoningSchema(Schema):
    class Meta:
        unknown = INCLUDE

    effort = StrictString(allow_none=True, validate=validate.OneOf(EFFORTS))
    summary = StrictString(allow_none=True, validate=validate.OneOf(("auto", "concise", "detailed")))
    generate_summary = StrictString(allow_none=True)


class ResponseCreateSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    model = Identifier(required=True, validate=validate.Length(min=1))
    input = StringOrList(fields.List(ItemField()), load_default=list)
    instructions = StrictString(allow_none=True, load_default=None)
    stream = StrictBool(load_default=False)
    store = StrictBool(load_default=True)
    background = StrictBool(load_default=False)
    previous_response_id = Identifier(allow_none=True, load_default=None)
    conversation = fields.Raw(allow_none=True, load_default=None)
    tools = fields.List(tool_field(), allow_none=True, load_default=None)
    tool_choice = ToolChoiceField(allow_none=True, load_default=None)
    parallel_tool_calls = StrictBool(allow_none=True, load_default=None)
    max_output_tokens = StrictInt(allow_none=True, load_default=None, validate=validate.Range(min=1))
    max_tool_calls = StrictInt(allow_none=True, load_default=None, validate=validate.Range(min=1))
    temperature = StrictNumber(allow_none=True, load_default=None, validate=validate.Range(min=0, max=2))
    top_p = StrictNumber(allow_none=True, load_default=None, validate=validate.Range(min=0, max=1))
    top_logprobs = StrictInt(allow_none=True, load_default=None, validate=validate.Range(min=0, max=20))
    text = fields.Nested(TextSchema, allow_none=True, load_default=None)
    reasoning = fields.Nested(ReasoningSchema, allow_none=True, load_default=None)
    include = fields.List(StrictString(), allow_none=True, load_default=None)
    truncation = StrictString(allow_none=True, load_default=None,
                              validate=validate.OneOf(("auto", "disabled")))
    metadata = fields.Dict(keys=StrictString(validate=validate.Length(max=64)),
                           values=StrictString(validate=validate.Length(max=512)),
                           allow_none=True, load_default=None)
    user = StrictString(allow_none=True, load_default=None)
    safety_identifier = StrictString(allow_none=True, load_default=None)
    prompt_cache_key = StrictString(allow_none=True, load_default=None)
    service_tier = StrictString(allow_none=True, load_default=None)
    stream_options = JSONObject(allow_none=True, load_default=None)
    generate = StrictBool(allow_none=True, load_default=None)
    context_management = fields.List(fields.Nested(ContextManagementSchema), allow_none=True, load_default=None)

    @validates("input")
    def _input_size(self, value: Any, **kwargs) -> None:
        if isinstance(value, list) and len(value) > MAX_INPUT_ITEMS:
            raise ValidationError(f"may hold at most {MAX_INPUT_ITEMS} items, got {len(value)}")

    @validates("tools")
    def _tools_size(self, value: list | None, **kwargs) -> None:
        if value is not None and len(value) > MAX_TOOLS:
            raise ValidationError(f"may hold at most {MAX_TOOLS} tools, got {len(value)}")

    @validates("metadata")
    def _metadata_size(self, value: dict | None, **kwargs) -> None:
        if value is not None and len(value) > 16:
            raise ValidationError("may hold at most 16 key-value pairs")

    @validates("text")
    def _json_schema_needs_schema(self, value: dict | None, **kwargs) -> None:
        fmt = (value or {}).get("format") or {}
        if fmt.get("type") == "json_schema" and (not fmt.get("name") or not isinstance(fmt.get("schema"), dict)):
            raise ValidationError({"format": ["json_schema format needs 'name' and 'schema'"]})


class CompactRequestSchema(Schema):
    """`POST /v1/responses/compact` (responses-api.md §1)."""

    class Meta:
        unknown = EXCLUDE

    model = Identifier(required=True, validate=validate.Length(min=1))
    input = StringOrList(fields.List(ItemField()), allow_none=True, load_default=None)
    previous_response_id = Identifier(allow_none=True, load_default=None)
    instructions = StrictString(allow_none=True, load_default=None)
    prompt_cache_key = StrictString(allow_none=True, load_default=None)
    prompt_cache_options = JSONObject(allow_none=True, load_default=None)
    service_tier = StrictString(allow_none=True, load_default=None)


_COMPACT = CompactRequestSchema()


def parse_compact_request(body: Any) -> dict[str, Any]:
    return load_body(_COMPACT, body)


_SCHEMA = ResponseCreateSchema()
_KNOWN = frozenset(field.data_key or name for name, field in _SCHEMA.fields.items())
# Names already reported, bounded so that clients inventing names cannot grow it (or the log).
_REPORTED: set[str] = set()
_REPORT_AT_MOST = 256


def parse_create_request(body: Any) -> dict[str, Any]:
    """Validate a create body; raises an OpenAI-shaped 400 `APIError` on bad input. Fields this
    gateway does not know are accepted (clients send newer ones) and logged once per name."""
    request = load_body(_SCHEMA, body)
    for name in body.keys() - _KNOWN:
        if name not in _REPORTED and len(_REPORTED) < _REPORT_AT_MOST:
            _REPORTED.add(name)
            log.info("ignoring an unknown request field", extra={"fields": {"field": name[:64]}})
    return request
