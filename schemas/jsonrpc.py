"""The params of JSON-RPC methods the gateway serves (gateway/jsonrpc)."""
from __future__ import annotations

import re
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from schemas.fields import Identifier, StrictString

# RFC 9110 field names are tokens; values never hold line breaks or U+0000 (they would be refused
# by, or split, the request the proxy path sends upstream with them).
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_BAD_VALUE = re.compile(r"[\r\n\x00]")


def _check_headers(headers: dict[str, str]) -> None:
    for name, value in headers.items():
        if not _HEADER_NAME.match(name):
            raise ValidationError(f"{name!r} is not a valid header name")
        if _BAD_VALUE.search(value):
            raise ValidationError(f"the value of {name!r} holds a line break or U+0000")


class ResponsesCallParamsSchema(Schema):
    """`responsesApi/call`: which API the host meant, its headers, and the Responses create body
    (validated later by the engine exactly as an HTTP body is, so its errors are HTTP-shaped)."""

    class Meta:
        unknown = EXCLUDE

    conversation_id = StrictString(data_key="conversationId", load_default=None, allow_none=True)
    call_id = Identifier(data_key="callId", required=True, validate=validate.Length(min=1, max=256))
    url = StrictString(required=True, validate=validate.Length(min=1, max=2048))
    headers = fields.Dict(keys=StrictString(), values=StrictString(), load_default=dict, validate=_check_headers)
    body = fields.Raw(required=True, allow_none=False)
    stream = fields.Boolean(load_default=True, truthy={True}, falsy={False})


def load_call_params(params: Any) -> dict[str, Any]:
    """The validated params; raises marshmallow's ValidationError."""
    if not isinstance(params, dict):
        raise ValidationError("params must be a JSON object")
    return ResponsesCallParamsSchema().load(params)
