"""A scriptable fake of vLLM's OpenAI-compatible server (chat completions and its own Responses
API), over real HTTP.

Why a real server instead of mocking the HTTP client: the gateway's streaming
path (chunked transfer, flushing, keep-alive, sockets dying mid-stream, stalls)
is exactly what mocks cannot exercise. This server speaks HTTP/1.1 on loopback
and streams one chunked write per SSE event, flushed immediately, like uvicorn.

Tests ``enqueue()`` :mod:`scripts <tests.fakes.scripts>` (one per model request
on either endpoint, FIFO); the same script renders as chat chunks or as vLLM's
Responses events (:mod:`tests.fakes.responses_api`). With an empty queue a
deterministic *auto responder* answers, which is what ``make demo`` and the
benchmarks run against (see ``main()`` for the CLI).
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import socket
import ssl
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from tests.fakes.responses_api import chat_view, error_event, render_responses, render_responses_object
from tests.fakes.scripts import (  # noqa: F401  (builders re-exported for tests)
    Script, auto_script, context_overflow, drop_after, error_body, http_error, length, malformed_after,
    no_finish, render_completion, render_stream, stall_after, stream_error, text, text_of,
    tool_calls,
)

CHAT_PATH = "/v1/chat/completions"
RESPONSES_PATH = "/v1/responses"
MODEL_PATHS = (CHAT_PATH, RESPONSES_PATH)


def _compact(obj) -> bytes:
    """JSON the way vLLM (pydantic) writes it: no spaces after separators."""
    return json.dumps(obj, separators=(",", ":")).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # small SSE writes must leave immediately

    def version_string(self) -> str:
        return "uvicorn"

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, False)

    def send_response(self, code, message=None) -> None:
        """A client that sent `Connection: close` is told the connection closes, as uvicorn does."""
        super().send_response(code, message)
        if self.close_connection:
            self.send_header("Connection", "close")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = b""
            while size := int(self.rfile.readline().split(b";")[0], 16):
                data += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return data
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _dispatch(self, method: str) -> None:
        fake: FakeUpstream = self.server.fake
        path = urlsplit(self.path).path  # origin-form, or absolute-form as a forward proxy gets it
        started = time.perf_counter()
        raw = self._read_body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        entry = {"method": method, "path": path, "target": self.path, "headers": headers, "json": body}
        fake._record(entry)
        if (method, path) == ("GET", "/health"):
            self._send(fake.health_status, b"")
        elif (method, path) == ("GET", "/v1/models"):
            self._send_json(200, fake.models_payload())
        elif (method, path) == ("POST", "/tokenize") and fake.tokenize:
            self._tokenize(fake, body)
        elif method == "POST" and path in MODEL_PATHS:
            self._generate(fake, path, body, headers)
            # How long the upstream itself took (body read → last byte written), so benchmarks
            # can separate the gateway's own time from the model server's.
            entry["elapsed_s"] = time.perf_counter() - started
        else:
            self._send_json(404, {"error": {"message": "Not Found", "type": "NotFoundError",
                                            "param": None, "code": 404}})

    def _tokenize(self, fake: FakeUpstream, body) -> None:
        """vLLM's `/tokenize` for chat messages, counting as this fake's usage counts prompts."""
        if not isinstance(body, dict) or body.get("model", fake.models[0]) not in fake.models:
            return self._send_json(404, error_body(404, "The model does not exist.", param="model"))
        count = max(1, sum(len(text_of(m.get("content"))) for m in body.get("messages") or []) // 4)
        self._send_json(200, {"count": count, "max_model_len": 32768, "tokens": [], "token_strs": None})

    def _send(self, status: int, data: bytes, content_type: str | None = None,
              headers: dict | None = None) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _send_json(self, status: int, obj: dict, headers: dict | None = None) -> None:
        self._send(status, _compact(obj), "application/json", headers)

    def _abort(self) -> None:
        """Kill the connection mid-response; nothing else may be written."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _generate(self, fake: FakeUpstream, path: str, body, headers: dict) -> None:
        if not isinstance(body, dict):
            return self._send_json(400, error_body(400, "Request body must be a JSON object"))
        model = body.get("model") or fake.models[0]
        if model not in fake.models:
            return self._send_json(404, error_body(
                404, f"The model `{model}` does not exist.", param="model"))
        chat = body if path == CHAT_PATH else chat_view(body)
        interrupt = fake._interrupt  # this generation's event: reset()/stop() set it
        unscripted = fake.auto_when is not None and fake.auto_when(chat)
        script = (None if unscripted else fake._next_script()) or auto_script(
            chat, headers, tokens=fake.auto_tokens, delay_s=fake.auto_delay_s)
        if script.status != 200:
            return self._send_json(script.status, script.error_body or {}, script.headers)
        messages = chat.get("messages") or []
        prompt_tokens = max(1, sum(len(text_of(m.get("content"))) for m in messages) // 4)
        try:
            if path == RESPONSES_PATH and body.get("stream"):
                events = render_responses(script, model=model, body=body, prompt_tokens=prompt_tokens)
                self._stream(script, events, interrupt, responses_api=True)
            elif path == RESPONSES_PATH:
                self._complete(script, interrupt, lambda: render_responses_object(
                    script, model=model, body=body, prompt_tokens=prompt_tokens))
            elif body.get("stream"):
                include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                events = render_stream(script, model=model, include_usage=include_usage,
                                       prompt_tokens=prompt_tokens)
                self._stream(script, events, interrupt)
            else:
                self._complete(script, interrupt, lambda: render_completion(
                    script, model=model, prompt_tokens=prompt_tokens))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away; nothing to do

    def _write_event(self, payload, responses_api: bool = False) -> None:
        body = payload.encode() if isinstance(payload, str) else _compact(payload)
        name = b"event: " + payload["type"].encode() + b"\n" if responses_api else b""
        self._write_raw(name + b"data: " + body + b"\n\n")

    def _write_raw(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))  # one HTTP chunk per event
        self.wfile.flush()

    def _stream(self, script: Script, events: list, interrupt: threading.Event,
                responses_api: bool = False) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        error_at = None if script.error_after is None else min(script.error_after, len(events) - 1)
        for i, event in enumerate(events):
            if i == script.drop_after:
                return self._abort()
            if i == script.stall_after and interrupt.wait(script.stall_s):
                return self._abort()
            if i > 0 and script.delay_s and interrupt.wait(script.delay_s):
                return self._abort()
            if i == script.malformed_after:
                self._write_raw(b"data: {this is not json\n\n")
                break
            if i == error_at and responses_api:
                self._write_event(error_event(script.error_message, i), responses_api)
                break
            if i == error_at:
                self._write_event({"error": {"message": script.error_message,
                                             "type": "InternalServerError", "param": None,
                                             "code": 500}})
                self._write_event("[DONE]")
                break
            self._write_event(event, responses_api)
            if script.keepalive_comments and i < len(events) - 1:
                self._write_raw(b": keep-alive\n\n")
        if script.drop_after is not None:  # n >= number of events: still no terminator
            return self._abort()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        self.server.fake._stream_sent()

    def _complete(self, script: Script, interrupt: threading.Event, render) -> None:
        """Non-streaming twin of ``_stream``: same waits, same failures."""
        if script.drop_after is not None:
            return self._abort()
        wait = (script.stall_s if script.stall_after is not None else 0.0) + \
            script.delay_s * (len(script.deltas) + 2)
        if wait > 0 and interrupt.wait(wait):
            return self._abort()
        if script.error_after is not None:
            return self._send_json(500, error_body(500, script.error_message))
        self._send_json(200, render())


class _Server(ThreadingHTTPServer):
    """uvicorn (vLLM) listens with a backlog of 2048; the stdlib default of 5 resets bursts."""

    request_queue_size = 2048

    def handle_error(self, request, client_address) -> None:
        """A client that refuses our certificate is a case tests provoke, not a fake's failure."""
        if not isinstance(sys.exc_info()[1], ssl.SSLError):
            super().handle_error(request, client_address)


class FakeUpstream:
    """The fake server. Bound on construction (so ``port`` is known early),
    served from a daemon thread after ``start()``; usable as a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, models=("fake-model",),
                 max_model_len: int = 32768, *, auto_tokens: int | None = None,
                 auto_delay_s: float = 0.0, tls: ssl.SSLContext | None = None):
        self.host, self.models, self.max_model_len = host, tuple(models), max_model_len
        self.scheme = "https" if tls else "http"
        self.auto_tokens, self.auto_delay_s = auto_tokens, auto_delay_s
        self.health_status = 200
        self.tokenize = True    # False: no /tokenize, as upstreams other than vLLM
        self.auto_when = None   # a predicate on the (chat) body: such requests skip the script queue
        self._lock = threading.Lock()
        self._queue: deque[Script] = deque()
        self._log: list[dict] = []
        self._conns: set[socket.socket] = set()
        self.connections_accepted = 0
        self.closed_at: list[float] = []   # time.monotonic() of each connection's end, in order
        self._faults: tuple | None = None
        self.faults_injected = 0
        self.streams_sent = 0
        self._sent = threading.Condition(self._lock)
        self._interrupt = threading.Event()
        self._server = _Server((host, port), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self
        if tls is not None:  # hosted endpoints speak TLS; the handshake runs in the handler thread
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True,
                                                  do_handshake_on_connect=False)
        self._thread: threading.Thread | None = None
        self._stopped = False

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self) -> FakeUpstream:
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"fake-upstream-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and cut every open connection, stalled ones included,
        so nothing keeps answering on a kept-alive socket. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._interrupt.set()
        if self._thread is not None:
            self._server.shutdown()
        self._server.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def enqueue(self, *scripts: Script) -> None:
        """Queue answers for the next chat requests, first in first out."""
        for script in scripts:
            if not isinstance(script, Script):
                raise TypeError(f"expected a Script, got {script!r}")
        with self._lock:
            self._queue.extend(scripts)

    @property
    def pending(self) -> int:
        """Scripts not yet consumed (assert 0 to check a test used them all)."""
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[dict]:
        """Snapshot of every request received: method, path, headers, json."""
        with self._lock:
            return list(self._log)

    def chat_requests(self) -> list:
        return [r["json"] for r in self.requests
                if r["method"] == "POST" and r["path"] == CHAT_PATH]

    def responses_requests(self) -> list:
        return [r["json"] for r in self.requests
                if r["method"] == "POST" and r["path"] == RESPONSES_PATH]

    def model_requests(self) -> list:
        """Every generation request, on either endpoint, in order."""
        return [r["json"] for r in self.requests
                if r["method"] == "POST" and r["path"] in MODEL_PATHS]

    def reset(self) -> None:
        """Forget scripts and requests, health back to 200, end any stall."""
        with self._lock:
            self._queue.clear()
            self._log.clear()
            self.connections_accepted = 0
            self.streams_sent = 0
            self._faults = None
            old, self._interrupt = self._interrupt, threading.Event()
        self.health_status = 200
        self.tokenize = True
        self.auto_when = None
        old.set()

    def models_payload(self) -> dict:
        return {"object": "list", "data": [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": "vllm", "root": m,
             "parent": None, "max_model_len": self.max_model_len, "permission": []}
            for m in self.models]}

    def inject_faults(self, rate: float, faults: list[Script], seed: int = 0) -> None:
        """Answer a share `rate` of unscripted requests with one of `faults` (chosen at random,
        reproducibly from `seed`); `faults_injected` counts them. `reset()` stops it."""
        with self._lock:
            self._faults = (rate, list(faults), random.Random(seed))
            self.faults_injected = 0

    def _next_script(self) -> Script | None:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            if self._faults is not None:
                rate, faults, rng = self._faults
                if rng.random() < rate:
                    self.faults_injected += 1
                    return rng.choice(faults)
            return None

    def _record(self, entry: dict) -> None:
        with self._lock:
            self._log.append(entry)

    def wait_for_streams_sent(self, count: int, timeout_s: float = 5.0) -> bool:
        """Wait until `count` streamed replies were written to the end (terminator flushed), so a
        test can read a reply that is already complete in the socket instead of sleeping."""
        with self._sent:
            return self._sent.wait_for(lambda: self.streams_sent >= count, timeout_s)

    def _stream_sent(self) -> None:
        with self._sent:
            self.streams_sent += 1
            self._sent.notify_all()

    def _track(self, conn: socket.socket, is_open: bool) -> None:
        with self._lock:
            (self._conns.add if is_open else self._conns.discard)(conn)
            self.connections_accepted += is_open
            if not is_open:
                self.closed_at.append(time.monotonic())


def main(argv: list[str] | None = None) -> None:
    """Foreground server for ``make demo`` and ``bench/`` (auto responder only)."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.upstream", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001, help="0 picks a free port")
    parser.add_argument("--model", dest="models", action="extend", nargs="+",
                        help="served model name(s); repeatable (default: fake-model)")
    parser.add_argument("--max-model-len", type=int, default=32768)
    parser.add_argument("--tokens", type=int, default=None,
                        help="stream exactly N one-word content deltas per echo reply")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="sleep before each delta")
    args = parser.parse_args(argv)
    fake = FakeUpstream(args.host, args.port, args.models or ("fake-model",), args.max_model_len,
                        auto_tokens=args.tokens, auto_delay_s=args.delay_ms / 1000)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    fake.start()
    print(f"fake upstream listening on {fake.base_url}", flush=True)
    while not done.wait(0.2):
        pass
    fake.stop()


if __name__ == "__main__":
    main()
