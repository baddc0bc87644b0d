"""One error type for every failure (upstream failures are mapped onto it in
gateway/upstream/failures.py).

Every error the gateway returns has the OpenAI shape
`{"error": {"message", "type", "param", "code"}}`; streamed failures reuse the same
`code`/`message` inside `response.failed`.
"""
from __future__ import annotations

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
        self.upstream_status: int | None = None    # the upstream's HTTP status, where it caused this

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
            code = "server_error" if self.status >= 500 or self.type == "server_error" else "invalid_prompt"
        return {"code": code, "message": self.message}


def invalid_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


def server_error(status: int, message: str, code: str = "server_error") -> APIError:
    return APIError(status, message, type="server_error", code=code)
