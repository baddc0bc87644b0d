"""Every way the model server can fail, mapped to the gateway's `APIError` in one place.

Both upstream kinds (chat and responses) and every call (streams, JSON answers, model listings)
come through here, so a refused connection, a timeout, an HTTP error body, an error inside a
stream or a dropped stream gives the same error whichever kind is behind the gateway.

Each failure is counted in `gateway_upstream_errors_total{kind}` and logged once here, with the
upstream's address; the message clients see never names the internal address.
"""
from __future__ import annotations

import logging
import math
import re
from typing import Any, Mapping

import requests

from gateway.errors import APIError, server_error
from gateway.logs import redacted
from gateway.metrics import UPSTREAM_ERRORS

log = logging.getLogger("gateway.upstream")

_CONTEXT_PATTERNS = (
    re.compile(r"maximum context length", re.I),
    re.compile(r"context length is only", re.I),
)
_TOOL_PARSER = re.compile(r"enable-auto-tool-choice|tool-call-parser", re.I)


def _counted(kind: str, error: APIError, detail: str = "", upstream_status: int | None = None) -> APIError:
    """Count and log the failure once; keep the upstream's HTTP status on the error for the access log."""
    UPSTREAM_ERRORS.labels(kind=kind).inc()
    log.warning("upstream error", extra={"fields": {"kind": kind, "upstream_status": upstream_status,
                                                    "detail": detail or redacted(error.message)}})
    error.upstream_status = upstream_status
    return error


def upstream_message(body: Any) -> str:
    """The human-readable text of an upstream error body (vLLM's nested, flat or FastAPI shape)."""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
        for key in ("message", "detail"):
            if body.get(key):
                return str(body[key])
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


def _is_context_overflow(message: str) -> bool:
    return any(p.search(message) for p in _CONTEXT_PATTERNS)


def from_status(status: int, body: Any, headers: Mapping[str, str]) -> APIError:
    """An upstream HTTP error answer (before any stream started)."""
    kind, error = _status_error(status, upstream_message(body), headers)
    return _counted(kind, error, f"HTTP {status}: {redacted(str(body)[:300])}", upstream_status=status)


def _status_error(status: int, upstream: str, headers: Mapping[str, str]) -> tuple[str, APIError]:
    if status == 429:
        delay = retry_after_seconds(headers) or 1.0
        shown = f"{delay:g}" if delay != math.floor(delay) else f"{int(delay)}"
        return "rate_limited", APIError(429, f"Upstream model server is rate limited. Please try again in {shown}s.",
                                        type="rate_limit_exceeded", code="rate_limit_exceeded",
                                        headers={"Retry-After": str(math.ceil(delay))})
    if status == 400 and _is_context_overflow(upstream):
        return "context_length", APIError(400, upstream, param="input", code="context_length_exceeded")
    if status == 400 and _TOOL_PARSER.search(upstream):
        return "tool_choice_unsupported", APIError(
            400, "The upstream model server cannot choose tools automatically: start vLLM "
            "with --enable-auto-tool-choice and --tool-call-parser. Upstream said: " + upstream,
            param="tool_choice", code="upstream_tool_choice_unsupported")
    if status == 404:
        return "not_found", APIError(404, upstream or "The model does not exist upstream.", param="model",
                                     code="model_not_found")
    if 400 <= status < 500:
        return "bad_request", APIError(400 if status in (400, 422) else status,
                                       f"Upstream rejected the request: {upstream or 'HTTP ' + str(status)}",
                                       code="upstream_bad_request")
    return "server_error", server_error(502, f"Upstream model server error (HTTP {status}): {upstream or 'no details'}")


def from_stream(body: Any) -> APIError:
    """An error reported inside a stream that had started: a chat `{"error": …}` chunk, a Responses
    `error` event, or the `error` object of an upstream `response.failed`."""
    message = upstream_message(body) or "upstream stream error"
    if _is_context_overflow(message):
        return _counted("context_length", APIError(400, message, param="input", code="context_length_exceeded"))
    code = body.get("code") if isinstance(body, dict) else None
    if code == "rate_limit_exceeded":
        return _counted("rate_limited", APIError(429, message, type="rate_limit_exceeded", code="rate_limit_exceeded"))
    return _counted("stream_error", server_error(502, f"Upstream model server failed mid-stream: {message}"))


def from_connect(base: str, exc: OSError) -> APIError:
    """The request could not be sent or got no answer head (requests' errors are OSErrors too;
    a bare OSError comes from TLS files that will not load)."""
    detail = f"{base}: {exc.__class__.__name__}: {exc}"
    if isinstance(exc, requests.Timeout):
        error = server_error(504, f"Upstream model server timed out ({exc.__class__.__name__}).")
        return _counted("connect_timeout", error, detail)
    if not isinstance(exc, requests.RequestException):
        error = server_error(502, "TLS settings for the upstream model server could not be loaded; check "
                                  "REQUESTS_CA_BUNDLE (the gateway's log has the details).")
        return _counted("tls", error, detail)
    if isinstance(exc, requests.exceptions.SSLError):
        return _counted("tls", server_error(502, "TLS with the upstream model server failed; if it uses a private "
                                                 "CA, point REQUESTS_CA_BUNDLE at its certificate."), detail)
    return _counted("connect", server_error(502, "Could not connect to the upstream model server."), detail)


def from_read(exc: Exception) -> APIError:
    """The body of a started answer stopped coming: a stall (read timeout) or a dropped connection."""
    if isinstance(exc, requests.Timeout) or "timed out" in str(exc).lower():
        return _counted("read_timeout",
                        server_error(504, "Upstream model server stalled: no data within the read timeout."))
    return _counted("dropped", server_error(502, "Upstream model server closed the stream unexpectedly."), repr(exc))


def malformed(what: str) -> APIError:
    return _counted("malformed", server_error(502, f"Upstream sent a malformed {what}."))


def ended_abnormally(detail: str) -> APIError:
    return _counted("ended_abnormally",
                    server_error(502, f"Upstream model server ended the stream abnormally ({detail})."))
