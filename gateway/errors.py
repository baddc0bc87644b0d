"""One error type for every failure, and the mapping of upstream failures onto it.

Every error the gateway returns has the OpenAI shape
`{"error": {"message", "type", "param", "code"}}`; streamed failures reuse the same
`code`/`message` inside `response.failed`.
"""
from __future__ import annotations

import math
import re
from typing import Any, Mapping


class APIError(Exception):
    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type,
                          "param": self.param, "code": self.code}}

    def as_response_error(self) -> dict[str, str]:
        """The `error` object of a failed Response.

        Codes are limited to the ResponseError vocabulary clients act on: `server_error`
        (retried), `rate_limit_exceeded` (retried after the hint), `context_length_exceeded`
        (Codex's fatal context error; not yet in the SDK's literal) and `invalid_prompt` for
        any other request the upstream refused (not retried).
        """
        if self.code in ("rate_limit_exceeded", "context_length_exceeded"):
            code = self.code
        else:
            code = "server_error" if self.status >= 500 else "invalid_prompt"
        return {"code": code, "message": self.message}


def invalid_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


def server_error(status: int, message: str, code: str = "server_error") -> APIError:
    return APIError(status, message, type="server_error", code=code)


_CONTEXT_PATTERNS = (
    re.compile(r"maximum context length", re.I),
    re.compile(r"context length is only", re.I),
)
_TOOL_PARSER = re.compile(r"enable-auto-tool-choice|tool-call-parser", re.I)


def _upstream_message(body: Any) -> str:
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
        if body.get("message"):
            return str(body["message"])
        if body.get("detail"):
            return str(body["detail"])
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return ""


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("Retry-After") or headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


def from_upstream_status(status: int, body: Any, headers: Mapping[str, str]) -> APIError:
    """Map an upstream HTTP error (vLLM's current or flat shape) to the gateway's error."""
    upstream = _upstream_message(body)
    if status == 429:
        delay = retry_after_seconds(headers) or 1.0
        shown = f"{delay:g}" if delay != math.floor(delay) else f"{int(delay)}"
        return APIError(429, f"Upstream model server is rate limited. Please try again in {shown}s.",
                        type="rate_limit_exceeded", code="rate_limit_exceeded",
                        headers={"Retry-After": str(math.ceil(delay))})
    if status == 400 and any(p.search(upstream) for p in _CONTEXT_PATTERNS):
        return APIError(400, upstream, param="input", code="context_length_exceeded")
    if status == 400 and _TOOL_PARSER.search(upstream):
        return APIError(400, "The upstream model server cannot choose tools automatically: start vLLM "
                        "with --enable-auto-tool-choice and --tool-call-parser. Upstream said: " + upstream,
                        param="tool_choice", code="upstream_tool_choice_unsupported")
    if status == 404:
        return APIError(404, upstream or "The model does not exist upstream.", param="model",
                        code="model_not_found")
    if 400 <= status < 500:
        return APIError(400 if status in (400, 422) else status,
                        f"Upstream rejected the request: {upstream or 'HTTP ' + str(status)}",
                        code="upstream_bad_request")
    return server_error(502, f"Upstream model server error (HTTP {status}): {upstream or 'no details'}")


def from_stream_error(body: Any) -> APIError:
    """An error object that arrived inside an upstream SSE stream."""
    message = _upstream_message(body) or "upstream stream error"
    if any(p.search(message) for p in _CONTEXT_PATTERNS):
        return APIError(400, message, param="input", code="context_length_exceeded")
    return server_error(502, f"Upstream model server failed mid-stream: {message}")
