"""Script builders and vLLM wire-format rendering for the fake upstream.

A :class:`Script` declaratively describes *one* answer to
``POST /v1/chat/completions``: the deltas vLLM would stream, how the stream
ends, and any failure to inject (HTTP error, dropped socket, stall, mid-stream
error). The same script renders both as SSE chunks and as one aggregated
``chat.completion`` object, so streaming and non-streaming clients see the
same answer -- which is what makes the fake honest for both.

The auto responder (``auto_script``) lives here too: it only picks a script
for an unscripted request, using the same builders tests use.
"""

from __future__ import annotations

import itertools
import json
import string
import time
import uuid
from dataclasses import dataclass, field, replace

__all__ = [
    "Script", "text", "tool_calls", "length", "http_error", "context_overflow",
    "drop_after", "stall_after", "malformed_after", "stream_error", "no_finish", "error_body",
    "render_stream", "render_completion", "auto_script", "text_of",
]


@dataclass
class Script:
    """One upstream answer. Counting of ``*_after`` fields is in SSE events,
    where event 0 is the ``role`` chunk and the last one is ``[DONE]``."""

    deltas: list[dict] = field(default_factory=list)  # after the role chunk
    finish_reason: str | None = "stop"  # None: no finish chunk at all
    usage: dict | None = None  # merged over the computed usage
    delay_s: float = 0.0  # sleep before every event after the role chunk
    status: int = 200  # != 200: answer error_body with this status
    error_body: dict | None = None
    headers: dict[str, str] = field(default_factory=dict)
    drop_after: int | None = None  # send this many events, then kill the socket
    stall_after: int | None = None  # send this many events, then sleep stall_s
    stall_s: float = 0.0
    error_after: int | None = None  # send this many events, then an error event
    error_message: str = "internal error"
    keepalive_comments: bool = False  # an SSE comment chunk right after every event, as some proxies send
    sequence: str = "contiguous"  # /v1/responses sequence_numbers: contiguous | missing | restart
    malformed_after: int | None = None  # send this many events, then one whose data is not JSON, then end


def _split(s: str, n: int) -> list[str]:
    return [s[i:i + n] for i in range(0, len(s), n)]


def new_tool_id() -> str:
    return f"chatcmpl-tool-{uuid.uuid4().hex}"


def text(content: str, *, reasoning: str | None = None, reasoning_field: str = "reasoning",
         pieces: list[str] | None = None, finish_reason: str | None = "stop",
         delay_s: float = 0.0, usage: dict | None = None) -> Script:
    """Reasoning (in ~4-char deltas) first, then content in ~4-char deltas or
    the explicit ``pieces``. ``reasoning_field="reasoning_content"`` mimics
    older vLLM releases."""
    if pieces is not None and content and "".join(pieces) != content:
        raise ValueError(f"pieces {pieces!r} do not spell content {content!r}")
    deltas = [{reasoning_field: p} for p in _split(reasoning or "", 4)]
    deltas += [{"content": p} for p in (pieces if pieces is not None else _split(content, 4))]
    return Script(deltas, finish_reason, usage=usage, delay_s=delay_s)


def tool_calls(calls: list[dict], *, content: str | None = None, reasoning: str | None = None,
               finish_reason: str = "tool_calls", arg_piece: int = 8,
               interleave: bool = False) -> Script:
    """Tool calls the way vLLM streams them: the first fragment of call ``i``
    carries ``index, id, type, function.name`` and empty arguments; later
    fragments carry only ``index`` and ``function.arguments``. ``interleave``
    alternates fragments of different calls (0, 1, 0, 1, ...)."""
    script = text(content or "", reasoning=reasoning, finish_reason=finish_reason)
    per_call = []
    for index, call in enumerate(calls):
        args = call.get("arguments", "")
        args = args if isinstance(args, str) else json.dumps(args)
        head = {"index": index, "id": call.get("id") or new_tool_id(), "type": "function",
                "function": {"name": call["name"], "arguments": ""}}
        frags = [{"index": index, "function": {"arguments": p}} for p in _split(args, arg_piece)]
        per_call.append([head, *frags])
    if interleave:
        order = [f for row in itertools.zip_longest(*per_call) for f in row if f is not None]
    else:
        order = [f for frags in per_call for f in frags]
    script.deltas += [{"tool_calls": [f]} for f in order]
    return script


def length(content: str) -> Script:
    """Content cut by max_tokens: ``finish_reason: "length"``."""
    return text(content, finish_reason="length")


_ERROR_TYPES = {400: "BadRequestError", 401: "AuthenticationError", 403: "PermissionDeniedError",
                404: "NotFoundError", 422: "UnprocessableEntityError", 429: "RateLimitError"}


def error_body(status: int, message: str, *, err_type: str | None = None,
               param: str | None = None, flat: bool = False) -> dict:
    """vLLM's error JSON: nested ``{"error": {...}}`` (current) or the older
    flat ``{"object": "error", ...}`` shape."""
    err_type = err_type or _ERROR_TYPES.get(
        status, "InternalServerError" if status >= 500 else "BadRequestError")
    info = {"message": message, "type": err_type, "param": param, "code": status}
    return {"object": "error", **info} if flat else {"error": info}


def http_error(status: int, message: str, *, err_type: str | None = None,
               param: str | None = None, headers: dict | None = None,
               flat: bool = False) -> Script:
    """Answer with HTTP ``status`` and an error body (e.g. 429 + Retry-After)."""
    return Script(status=status, headers=dict(headers or {}),
                  error_body=error_body(status, message, err_type=err_type, param=param, flat=flat))


def context_overflow(new_style: bool = True, *, input_tokens: int = 40000, max_tokens: int = 1000,
                     context_len: int = 32768, flat: bool = False) -> Script:
    """400 for a prompt that does not fit: vLLM >= 0.16 wording (param
    ``input_tokens``) or the older "maximum context length" wording."""
    if new_style:
        message = (f"You passed {input_tokens} input tokens and requested {max_tokens} output "
                   f"tokens. However, the model's context length is only {context_len} tokens, "
                   f"resulting in a maximum input length of {context_len - max_tokens} tokens. "
                   f"Please reduce the length of the input prompt. "
                   f"(parameter=input_tokens, value={input_tokens})")
        return http_error(400, message, param="input_tokens", flat=flat)
    message = (f"This model's maximum context length is {context_len} tokens. However, you "
               f"requested {input_tokens + max_tokens} tokens ({input_tokens} in the messages, "
               f"{max_tokens} in the completion). Please reduce the length of the messages or "
               f"completion.")
    return http_error(400, message, flat=flat)


def _long_text() -> Script:
    return text("This answer is long enough to be cut off somewhere in the middle. " * 3)


def drop_after(n: int, base: Script | None = None) -> Script:
    """Send ``n`` events of ``base`` then close the TCP connection: no
    terminating zero-length chunk, no ``[DONE]`` (upstream crashed)."""
    return replace(base or _long_text(), drop_after=n)


def stall_after(n: int, seconds: float, base: Script | None = None) -> Script:
    """Send ``n`` events, go silent for ``seconds`` (cut short by
    ``stop()``/``reset()``, which then drop the connection), then go on."""
    return replace(base or text("Stalled, then resumed."), stall_after=n, stall_s=seconds)


def malformed_after(n: int, base: Script | None = None) -> Script:
    return replace(base or _long_text(), malformed_after=n)


def stream_error(message: str = "internal error", after: int = 1) -> Script:
    """After ``after`` events, vLLM's mid-stream error event then ``[DONE]``
    (HTTP status is already 200). Non-streaming requests get a 500."""
    return replace(text("This answer fails midway."), error_after=after, error_message=message)


def no_finish(content: str) -> Script:
    """Content then ``[DONE]`` without any finish_reason: a truncated answer."""
    return text(content, finish_reason=None)


# --- auto responder (empty queue) ---------------------------------------------

_WORDS = ("lorem ", "ipsum ", "dolor ", "sit ", "amet ")


def text_of(content) -> str:
    """Message content as text; list contents join their text parts."""
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and "text" in p)
    return content if isinstance(content, str) else ""


def _last_user_text(messages: list) -> str:
    users = [m for m in messages if m.get("role") == "user"]
    return text_of(users[-1].get("content")) if users else ""


def _schema_value(schema: dict, word: str):
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if schema.get("enum"):
        return schema["enum"][0]
    return {"string": word, "number": 1, "integer": 1, "boolean": True}.get(kind)


def auto_script(body: dict, headers: dict, *, tokens: int | None = None,
                delay_s: float = 0.0) -> Script:
    """Deterministic, vLLM-like answer for an unscripted request:
    tool result -> "The tool returned: ..."; tools offered -> call one with
    schema-derived arguments; otherwise echo "You said: ...". ``max_tokens``
    truncates with finish "length"; ``x-fake-tokens``/``x-fake-delay-ms``
    headers (or the ``tokens``/``delay_s`` defaults) shape benchmark streams."""
    messages = body.get("messages") or []
    last = messages[-1] if messages else {}
    tokens = int(headers.get("x-fake-tokens", tokens or 0)) or None
    if "x-fake-delay-ms" in headers:
        delay_s = float(headers["x-fake-delay-ms"]) / 1000
    tools, choice = body.get("tools") or [], body.get("tool_choice", "auto")
    if last.get("role") == "tool":
        script = text("The tool returned: " + text_of(last.get("content")))
    elif tools and choice != "none":
        named = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
        fns = [t.get("function", {}) for t in tools]
        fn = next((f for f in fns if f.get("name") == named), fns[0])
        words = _last_user_text(messages).split()
        word = words[-1].strip(string.punctuation) if words else ""
        params = fn.get("parameters") or {}
        props = params.get("properties") or {}
        args = {k: _schema_value(props.get(k, {}), word) for k in params.get("required", [])}
        script = tool_calls([{"name": fn.get("name"), "arguments": args}])
    else:
        reply = "You said: " + _last_user_text(messages)
        reasoning = "Thinking about the request." if body.get("reasoning_effort") else None
        script = text(reply, reasoning=reasoning)
        if tokens:
            script.deltas = [d for d in script.deltas if "content" not in d]
            script.deltas += [{"content": _WORDS[i % len(_WORDS)]} for i in range(tokens)]
    limit = body.get("max_tokens") or body.get("max_completion_tokens")
    if script.finish_reason == "stop" and isinstance(limit, int) and len(script.deltas) > limit:
        script.deltas, script.finish_reason = script.deltas[:limit], "length"
    script.delay_s = delay_s
    return script


# --- rendering -------------------------------------------------------------


def _delta_text(delta: dict) -> str:
    calls = delta.get("tool_calls") or [{}]
    return (delta.get("content") or delta.get("reasoning") or delta.get("reasoning_content")
            or calls[0].get("function", {}).get("arguments") or "")


def _usage(script: Script, prompt_tokens: int) -> dict:
    completion = sum(1 for d in script.deltas if _delta_text(d))
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
             "total_tokens": prompt_tokens + completion,
             "prompt_tokens_details": {"cached_tokens": 0}}
    usage.update(script.usage or {})
    if "total_tokens" not in (script.usage or {}):
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return usage


def render_stream(script: Script, *, model: str, include_usage: bool,
                  prompt_tokens: int) -> list:
    """All SSE payloads of a successful stream: dicts, then the string ``"[DONE]"``."""
    cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(choices: list, **extra) -> dict:
        return {"id": cid, "object": "chat.completion.chunk", "created": created,
                "model": model, "choices": choices, **extra}

    def choice(delta: dict, finish: str | None = None) -> dict:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

    events = [chunk([choice({"role": "assistant", "content": ""})])]
    events += [chunk([choice(d)]) for d in script.deltas]
    if script.finish_reason is not None:
        events.append(chunk([choice({}, script.finish_reason)]))
    if include_usage:
        events.append(chunk([], usage=_usage(script, prompt_tokens)))
    return [*events, "[DONE]"]


def render_completion(script: Script, *, model: str, prompt_tokens: int) -> dict:
    """The non-streaming ``chat.completion`` equivalent of ``render_stream``."""
    message: dict = {"role": "assistant", "content": None, "reasoning": None, "tool_calls": []}
    calls: dict[int, dict] = {}
    for delta in script.deltas:
        for key in ("content", "reasoning", "reasoning_content"):
            if key in delta:
                message[key] = (message.get(key) or "") + delta[key]
        for frag in delta.get("tool_calls", []):
            call = calls.setdefault(frag["index"], {"id": None, "type": "function",
                                                    "function": {"name": None, "arguments": ""}})
            call["id"] = frag.get("id", call["id"])
            fn = frag.get("function", {})
            call["function"]["name"] = fn.get("name", call["function"]["name"])
            call["function"]["arguments"] += fn.get("arguments", "")
    message["tool_calls"] = [calls[i] for i in sorted(calls)]
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
            "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": script.finish_reason}],
            "usage": _usage(script, prompt_tokens)}
