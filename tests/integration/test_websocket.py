"""The Responses API over WebSocket (`GET /v1/responses` + Upgrade), with real WebSocket clients.

Most tests run against the session's gunicorn gateway (`gateway` fixture) through
`simple_websocket.Client`; tests that need other settings (WebSocket disabled, a short maximum
connection age) use `make_gateway` (werkzeug's threaded server, which flask-sock also supports).
`RawSocket` is a hand-written client on a plain TCP socket: it shows the handshake's status, headers
and body when the server refuses the upgrade, and it reads nothing unless asked (the load tests use
it to stall). Every event list of one response goes through `check_stream`, and every test asserts
from the fake upstream's request log exactly what went upstream.

The contract is `shared/reference/responses-api.md` §7 and `codex-cli.md` §7.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import socket
import struct
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import simple_websocket

from tests.checks import TERMINAL, check_stream, collect_text
from tests.fakes import upstream as fake
from tests.support import ROOT, post_stream

pytestmark = pytest.mark.integration

MODEL = "fake-model"
FIXTURES = ROOT / "tests" / "fixtures" / "codex"  # captured Codex traffic (from shared/fixtures/codex)
WEATHER = {"type": "function", "name": "get_weather",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# -- clients -----------------------------------------------------------------------------------

def ws_url(base_url: str) -> str:
    return "ws" + base_url[len("http"):] + "/v1/responses"


class Socket:
    """One WebSocket connection through `simple_websocket.Client` (it reads on its own thread)."""

    def __init__(self, base_url: str, headers: dict[str, str] | list[tuple[str, str]] | None = None) -> None:
        self.ws = simple_websocket.Client.connect(ws_url(base_url), headers=headers)

    def __enter__(self) -> "Socket":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:  # already closed by the server
            pass

    def send(self, frame: dict[str, Any] | str | bytes) -> None:
        self.ws.send(frame if isinstance(frame, (str, bytes)) else json.dumps(frame))

    def receive(self, timeout: float = 15.0) -> dict[str, Any]:
        raw = self.ws.receive(timeout=timeout)
        assert raw is not None, f"no frame from the gateway within {timeout}s"
        assert isinstance(raw, str), f"server frames must be text frames, got {type(raw).__name__}"
        frame = json.loads(raw)  # exactly one JSON value per frame
        assert isinstance(frame, dict) and isinstance(frame.get("type"), str), f"not an event: {raw[:300]}"
        return frame

    def nothing_within(self, seconds: float) -> None:
        raw = self.ws.receive(timeout=seconds)
        assert raw is None, f"unexpected frame: {raw[:500]}"

    def events(self, timeout: float = 15.0) -> list[dict[str, Any]]:
        """The frames of one request: its events through the terminal one, or a lone error frame."""
        events: list[dict[str, Any]] = []
        while True:
            frame = self.receive(timeout)
            events.append(frame)
            if frame["type"] in TERMINAL or frame["type"] == "error":
                return events

    def send_create(self, **body: Any) -> None:
        body.setdefault("model", MODEL)
        self.send({"type": "response.create", **body})

    def create(self, **body: Any) -> list[dict[str, Any]]:
        self.send_create(**body)
        return self.events()

    def completed(self, **body: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        events = self.create(**body)
        assert events[0]["type"] != "error", f"error frame: {events[0]}"
        final = check_stream(events)
        assert final["status"] == "completed", final.get("error")
        return events, final

    def error(self, **body: Any) -> dict[str, Any]:
        events = self.create(**body)
        assert len(events) == 1 and events[0]["type"] == "error", f"expected one error frame, got {events}"
        return events[0]


class RawSocket:
    """A WebSocket client written by hand on a TCP socket (no extensions, masked text frames).

    `status`, `headers` and `body` describe the handshake answer; after a 101 the socket is left
    alone, so a caller that never calls `recv_frame` never reads a byte."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None, omit: tuple[str, ...] = (),
                 rcvbuf: int | None = None, timeout: float = 10.0, path: str = "/v1/responses") -> None:
        parts = urlsplit(base_url)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:  # before connect(), so the advertised window stays small
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((parts.hostname, parts.port))
        key = base64.b64encode(os.urandom(16)).decode()
        fields = {"Host": f"{parts.hostname}:{parts.port}", "Upgrade": "websocket", "Connection": "Upgrade",
                  "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13", **(headers or {})}
        head = "".join(f"{k}: {v}\r\n" for k, v in fields.items() if k not in omit)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\n{head}\r\n".encode())
        self._buf = b""
        while b"\r\n\r\n" not in self._buf:
            self._fill()
        raw_head, self._buf = self._buf.split(b"\r\n\r\n", 1)
        status_line, *lines = raw_head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
        self.body = b""
        if self.status == 101:
            expected = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
            assert self.headers.get("sec-websocket-accept") == expected, self.headers
        else:
            length = int(self.headers.get("content-length", "0"))
            while len(self._buf) < length:
                self._fill()
            self.body = self._buf[:length]

    def json(self) -> Any:
        return json.loads(self.body)

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        self._buf += data

    def _take(self, n: int) -> bytes:
        while len(self._buf) < n:
            self._fill()
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def send_text(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 1 << 16:
            head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def recv_frame(self) -> tuple[int, bytes]:
        """One server frame (opcode, payload); continuation frames are joined."""
        opcode, chunks = None, []
        while True:
            b0, b1 = self._take(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._take(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._take(8))[0]
            assert not b1 & 0x80, "server frames must not be masked"
            chunks.append(self._take(n))
            opcode = opcode if opcode is not None else b0 & 0x0F
            if b0 & 0x80:
                return opcode, b"".join(chunks)

    def recv_json(self) -> dict[str, Any]:
        opcode, payload = self.recv_frame()
        assert opcode == 1, f"expected a text frame, got opcode {opcode}"
        return json.loads(payload)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def handshake(base_url: str, **kwargs: Any) -> RawSocket:
    """The handshake's answer (status, headers, body); the socket is closed again."""
    raw = RawSocket(base_url, **kwargs)
    raw.close()
    return raw


# -- helpers -----------------------------------------------------------------------------------

def chats(upstream) -> list[dict[str, Any]]:
    return upstream.chat_requests()


def messages(upstream, index: int) -> list[dict[str, Any]]:
    return chats(upstream)[index]["messages"]


def http_create(url: str, **body: Any) -> dict[str, Any]:
    body.setdefault("model", MODEL)
    resp = requests.post(f"{url}/v1/responses", json=body, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def not_found_frame(response_id: str) -> dict[str, Any]:
    return {"type": "error", "status": 400, "error": {
        "type": "invalid_request_error", "code": "previous_response_not_found", "param": "previous_response_id",
        "message": f"Previous response with id '{response_id}' not found."}}


def developer(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": text}]}


def load_fixture(name: str) -> Any:
    path = FIXTURES / name
    assert path.exists(), f"Codex wire fixture {path} is missing"
    return json.loads(path.read_text(encoding="utf-8"))


# -- prewarm and chains ------------------------------------------------------------------------

def test_prewarm_is_answered_locally_and_can_be_chained(gateway, upstream):
    upstream.enqueue(fake.text("Hello!"))
    with Socket(gateway) as ws:
        events, warm = ws.completed(generate=False, store=False, tools=[WEATHER],
                                    input=[developer("You are a test assistant.")])
        assert types(events) == ["response.created", "response.in_progress", "response.completed"]
        assert warm["id"].startswith("resp_") and events[0]["response"]["id"] == warm["id"]
        assert warm["output"] == [] and warm["error"] is None
        assert chats(upstream) == [], "a prewarm (generate:false) must not reach the upstream"

        _, reply = ws.completed(previous_response_id=warm["id"], store=False, tools=[WEATHER], input="hi")
        assert reply["previous_response_id"] == warm["id"]
        assert collect_text(reply) == "Hello!"
    [chat] = chats(upstream)
    assert chat["messages"] == [{"role": "system", "content": "You are a test assistant."},
                                {"role": "user", "content": "hi"}]
    assert [t["function"]["name"] for t in chat["tools"]] == ["get_weather"]
    assert requests.get(f"{gateway}/v1/responses/{warm['id']}", timeout=10).status_code == 404  # store:false


def test_store_false_chain_of_three_turns_over_one_socket_sends_only_deltas(gateway, upstream):
    upstream.enqueue(fake.text("Hello!"),
                     fake.tool_calls([{"name": "get_weather", "arguments": {"city": "Paris"}}]),
                     fake.text("It is sunny in Paris."))
    with Socket(gateway) as ws:
        _, first = ws.completed(store=False, instructions="Be brief.", tools=[WEATHER], input="hi")
        _, second = ws.completed(store=False, instructions="Be brief.", tools=[WEATHER], input="weather in Paris?",
                                 previous_response_id=first["id"])
        [call] = second["output"]
        assert call["type"] == "function_call" and call["name"] == "get_weather"
        _, third = ws.completed(store=False, instructions="Be brief.", tools=[WEATHER],
                                previous_response_id=second["id"],
                                input=[{"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}])
        assert collect_text(third) == "It is sunny in Paris."
        assert [r["store"] for r in (first, second, third)] == [False, False, False]

        # store:false state is local to its connection: another socket and HTTP cannot continue it.
        with Socket(gateway) as other:
            assert other.error(store=False, input="more", previous_response_id=third["id"]) == \
                not_found_frame(third["id"])
    resp = requests.post(f"{gateway}/v1/responses", timeout=10, json={
        "model": MODEL, "input": "more", "previous_response_id": third["id"]})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "previous_response_not_found"

    assert len(chats(upstream)) == 3
    system = {"role": "system", "content": "Be brief."}
    turn1 = [{"role": "user", "content": "hi"}]
    turn2 = turn1 + [{"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "weather in Paris?"}]
    turn3 = turn2 + [
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": call["call_id"], "type": "function",
            "function": {"name": "get_weather", "arguments": call["arguments"]}}]},
        {"role": "tool", "tool_call_id": call["call_id"], "content": "sunny"}]
    assert messages(upstream, 0) == [system, *turn1]
    assert messages(upstream, 1) == [system, *turn2]
    assert messages(upstream, 2) == [system, *turn3]


def test_stored_chain_over_websocket_continues_over_http(gateway, upstream):
    upstream.enqueue(fake.text("one"), fake.text("two"), fake.text("three"))
    with Socket(gateway) as ws:
        _, first = ws.completed(input="q1")
        _, second = ws.completed(input="q2", previous_response_id=first["id"])
    for response in (first, second):
        stored = requests.get(f"{gateway}/v1/responses/{response['id']}", timeout=10)
        assert stored.status_code == 200 and stored.json() == response
    third = http_create(gateway, input="q3", previous_response_id=second["id"])
    assert third["status"] == "completed" and collect_text(third) == "three"
    assert [[m["content"] for m in messages(upstream, i)] for i in range(3)] == [
        ["q1"], ["q1", "one", "q2"], ["q1", "one", "q2", "two", "q3"]]


def test_http_stored_response_continues_over_websocket(gateway, upstream):
    upstream.enqueue(fake.text("from http"), fake.text("from ws"), fake.text("again"))
    first = http_create(gateway, input="q1", instructions="Sys.")
    with Socket(gateway) as ws:  # a fresh connection: its cache is empty, the parent comes from storage
        _, second = ws.completed(input="q2", previous_response_id=first["id"], store=False)
        _, third = ws.completed(input="q3", previous_response_id=second["id"], store=False)
    assert second["previous_response_id"] == first["id"] and collect_text(third) == "again"
    assert messages(upstream, 1) == [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "from http"},
                                     {"role": "user", "content": "q2"}]
    assert messages(upstream, 2) == messages(upstream, 1) + [{"role": "assistant", "content": "from ws"},
                                                             {"role": "user", "content": "q3"}]


# -- errors and odd frames ---------------------------------------------------------------------

def test_unknown_previous_response_id_is_an_error_frame_and_the_socket_stays_usable(gateway, upstream):
    upstream.enqueue(fake.text("still here"))
    with Socket(gateway) as ws:
        assert ws.error(input="x", previous_response_id="resp_unknown", store=False) == not_found_frame("resp_unknown")
        assert chats(upstream) == []
        _, final = ws.completed(input="again", store=False)
        assert collect_text(final) == "still here"


MALFORMED = [  # (frame, the error field that names the problem, its value)
    ("not json", "code", "invalid_json"),
    (b"\xff\xfe binary garbage", "code", "invalid_json"),
    ("", "code", "invalid_json"),
    ('{"model": "fake-model", "input": "no type"}', "param", "type"),
    ('["response.create"]', "param", "type"),
    ('"response.create"', "param", "type"),
    ('{"type": 5}', "param", "type"),
]


def test_malformed_frames_get_error_frames_and_the_socket_stays_open(gateway, upstream):
    upstream.enqueue(fake.text("fine"))
    with Socket(gateway) as ws:
        for raw, key, value in MALFORMED:
            ws.send(raw)
            [frame] = ws.events()
            assert frame["type"] == "error" and frame["status"] == 400, (raw, frame)
            assert frame["error"]["type"] == "invalid_request_error" and frame["error"]["message"], (raw, frame)
            assert frame["error"][key] == value, (raw, frame)
        # A well-formed frame with an invalid body: the same 400 the HTTP route gives, as a frame.
        frame = ws.error(input=[{"type": "message", "role": "user", "content": 7}])
        assert frame["status"] == 400 and frame["error"]["type"] == "invalid_request_error", frame
        frame = ws.error(model=None, input="hi")
        assert frame["status"] == 400 and frame["error"]["param"] == "model", frame
        assert chats(upstream) == []
        _, final = ws.completed(input="now valid")
        assert collect_text(final) == "fine"


def test_response_processed_is_accepted_silently(gateway, upstream):
    upstream.enqueue(fake.text("first"), fake.text("second"))
    with Socket(gateway) as ws:
        ws.send({"type": "response.processed", "response_id": "resp_whatever"})
        ws.nothing_within(0.5)
        _, first = ws.completed(input="a", store=False)
        ws.send({"type": "response.processed", "response_id": first["id"]})
        events, second = ws.completed(input="b", store=False, previous_response_id=first["id"])
        assert events[0]["type"] == "response.created"
    assert collect_text(second) == "second"
    assert [m["content"] for m in messages(upstream, 1)] == ["a", "first", "b"]


def test_second_create_while_one_runs_is_answered_after_it_in_order(gateway, upstream):
    slow = fake.text("one two three four five", pieces=["one ", "two ", "three ", "four ", "five"], delay_s=0.1)
    upstream.enqueue(slow, fake.text("second answer"))
    with Socket(gateway) as ws:
        ws.send_create(input="first", store=False)
        ws.send_create(input="second", store=False)
        first, second = ws.events(), ws.events()
    final1, final2 = check_stream(first), check_stream(second)
    assert final1["id"] != final2["id"]
    assert {e.get("response", {}).get("id", final1["id"]) for e in first} == {final1["id"]}
    assert collect_text(final1) == "one two three four five" and collect_text(final2) == "second answer"
    assert [m["content"] for m in messages(upstream, 0)] == ["first"]
    assert [m["content"] for m in messages(upstream, 1)] == ["second"]


def test_pipelined_create_chained_to_the_running_response_waits_for_it(gateway, upstream):
    slow = fake.text("alpha beta gamma", pieces=["alpha ", "beta ", "gamma"], delay_s=0.15)
    upstream.enqueue(slow, fake.text("delta"))
    with Socket(gateway) as ws:
        ws.send_create(input="go", store=False)
        created = ws.receive()
        assert created["type"] == "response.created"
        # Sent while the first response is still streaming: it must wait, then find it in the cache.
        ws.send_create(input="continue", store=False, previous_response_id=created["response"]["id"])
        first = [created] + ws.events()
        second = ws.events()
    assert check_stream(first)["status"] == "completed"
    final = check_stream(second)
    assert final["status"] == "completed" and final["previous_response_id"] == created["response"]["id"]
    assert messages(upstream, 1) == [{"role": "user", "content": "go"},
                                     {"role": "assistant", "content": "alpha beta gamma"},
                                     {"role": "user", "content": "continue"}]


@pytest.mark.parametrize("script", [
    pytest.param(lambda: fake.stream_error("engine crashed", after=3), id="error-event"),
    pytest.param(lambda: fake.drop_after(4), id="dropped-socket"),
    pytest.param(lambda: fake.http_error(500, "engine dead"), id="http-500"),
])
def test_upstream_failure_is_response_failed_and_the_connection_survives(gateway, upstream, script):
    upstream.enqueue(script(), fake.text("recovered"))
    with Socket(gateway) as ws:
        events = ws.create(input="q", store=True)
        failed = check_stream(events)
        assert events[-1]["type"] == "response.failed" and failed["status"] == "failed"
        assert failed["error"]["code"] == "server_error" and failed["error"]["message"]
        _, final = ws.completed(input="again", store=False)
        assert collect_text(final) == "recovered"
    stored = requests.get(f"{gateway}/v1/responses/{failed['id']}", timeout=10).json()
    assert stored["status"] == "failed" and stored["error"]["code"] == "server_error"
    assert len(chats(upstream)) == 2


def test_client_closing_mid_stream_records_the_stored_response_as_failed(gateway, upstream):
    pieces = [f"word{i} " for i in range(40)]
    upstream.enqueue(fake.text("".join(pieces), pieces=pieces, delay_s=0.05))
    with Socket(gateway) as ws:
        ws.send_create(input="long one", store=True)
        created = ws.receive()
        assert created["type"] == "response.created"
        assert ws.receive()["type"] == "response.in_progress"
    response_id = created["response"]["id"]
    deadline = time.monotonic() + 5
    while True:  # final once the gateway notices (its next send fails), well before the 2 s reply ends
        resp = requests.get(f"{gateway}/v1/responses/{response_id}", timeout=10)
        if (resp.status_code == 200 and resp.json()["status"] != "in_progress") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert resp.status_code == 200, f"response {response_id} was never recorded"
    stored = resp.json()
    assert stored["status"] == "failed" and stored["error"]["code"] == "server_error", stored
    assert len(collect_text(stored)) < len("".join(pieces))


# -- transport equivalence, tolerated fields ---------------------------------------------------

_ID = re.compile(r"^(resp|msg|rs|fc|ctc|call|fco|item)_[0-9A-Za-z_-]+$")


def normalized(value: Any, names: dict[str, str]) -> Any:
    """Ids → placeholders by first appearance; timestamps and sealed reasoning blanked."""
    if isinstance(value, dict):
        return {k: ("<ts>" if k in ("created_at", "completed_at") and v is not None
                    else "<sealed>" if k == "encrypted_content" and v else normalized(v, names))
                for k, v in value.items()}
    if isinstance(value, list):
        return [normalized(v, names) for v in value]
    if isinstance(value, str) and _ID.match(value):
        return names.setdefault(value, f"<id{len(names)}>")
    return value


@pytest.mark.parametrize("script", [
    pytest.param(lambda: fake.text("Hello over both transports.", reasoning="Thinking it over."), id="text"),
    pytest.param(lambda: fake.tool_calls([{"name": "get_weather",
                                           "arguments": {"city": "Oslo"}}], content="Checking."), id="tool-call"),
    pytest.param(lambda: fake.length("cut short here"), id="incomplete"),
])
def test_each_frame_is_the_sse_data_payload(gateway, upstream, script):
    upstream.enqueue(script(), script())
    body = {"model": MODEL, "input": "same question", "tools": [WEATHER], "store": False}
    resp, sse_events = post_stream(gateway, body)
    assert resp.status_code == 200
    with Socket(gateway) as ws:
        ws_events = ws.create(**body)
    check_stream(sse_events)
    check_stream(ws_events)
    assert types(ws_events) == types(sse_events)
    assert normalized(ws_events, {}) == normalized(sse_events, {})
    assert chats(upstream)[0] == chats(upstream)[1], "both transports must send the same upstream request"


@pytest.mark.parametrize("fields", [{"stream": True}, {"stream": False}, {"background": False},
                                    {"stream": True, "background": False}], ids=json.dumps)
def test_stream_and_background_fields_are_tolerated(gateway, upstream, fields):
    upstream.enqueue(fake.text("tolerated"))
    with Socket(gateway) as ws:
        events, final = ws.completed(input="q", store=False, **fields)
    assert types(events)[:2] == ["response.created", "response.in_progress"]  # streamed whatever `stream` says
    assert collect_text(final) == "tolerated" and final["background"] is False
    assert "background" not in chats(upstream)[0] and chats(upstream)[0]["stream"] is True


# -- the captured Codex frames -----------------------------------------------------------------

def codex_handshake_headers() -> list[tuple[str, str]]:
    """The headers Codex sent on its upgrade, minus what the client library writes itself."""
    skip = {"host", "connection", "upgrade", "sec-websocket-version", "sec-websocket-extensions", "authorization"}
    return [(k, v) for k, v in load_fixture("ws_handshake_headers.json") if k.lower() not in skip]


def test_codex_frames_replay_over_one_socket_like_the_full_http_request(gateway, upstream):
    prewarm, chained, tool_output = (load_fixture(f"ws_{name}_frame.json") for name in ("prewarm", "chained",
                                                                                      "tool_output"))
    for frame in (prewarm, chained, tool_output):
        frame["model"] = MODEL
    args = {"cmd": "echo hello", "yield_time_ms": 2000}
    answers = [fake.tool_calls([{"name": "exec_command", "arguments": args}]),
               fake.text("hello was printed")]
    upstream.enqueue(*answers, *answers)  # once over WebSocket, once over HTTP

    with Socket(gateway, headers=codex_handshake_headers()) as ws:
        ws.send(prewarm)
        warm_events = ws.events()
        warm = check_stream(warm_events)
        assert warm["status"] == "completed" and warm["output"] == []
        assert chats(upstream) == []

        ws.send({**chained, "previous_response_id": warm["id"]})
        call_events = ws.events()
        with_call = check_stream(call_events)
        assert with_call["status"] == "completed" and with_call["previous_response_id"] == warm["id"]
        [call] = with_call["output"]
        assert (call["type"], call["name"]) == ("function_call", "exec_command")
        assert json.loads(call["arguments"]) == args
        # Codex answers the call the gateway emitted: its call_id, chained to the id it returned.
        tool_output["input"][0]["call_id"] = call["call_id"]

        ws.send({**tool_output, "previous_response_id": with_call["id"]})
        final = check_stream(ws.events())
        assert final["status"] == "completed" and collect_text(final) == "hello was printed"
    ws_chats = chats(upstream)
    assert len(ws_chats) == 2

    # The HTTP path with the full input (Codex's own fallback): the same upstream requests.
    http_body = {k: v for k, v in tool_output.items() if k not in ("type", "previous_response_id")}
    full_turn = prewarm["input"] + chained["input"]
    for turn_input in (full_turn, full_turn + [call] + tool_output["input"]):
        resp, events = post_stream(gateway, {**http_body, "input": turn_input})
        assert resp.status_code == 200 and check_stream(events)["status"] == "completed"
    http_chats = chats(upstream)[2:]
    assert ws_chats[0] == http_chats[0]
    assert ws_chats[1] == http_chats[1]
    roles = [m["role"] for m in ws_chats[1]["messages"]]
    assert roles == ["system", "system", "user", "user", "assistant", "tool"], roles


# -- connection-level behaviour ----------------------------------------------------------------

def test_websocket_disabled_answers_426_and_http_keeps_working(make_gateway, upstream):
    url = make_gateway(llm_api_base=upstream.base_url, ws_enabled=False)
    raw = handshake(url)
    assert raw.status == 426
    assert raw.headers.get("upgrade", "").lower() == "websocket"
    error = raw.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "websocket_disabled" and error["message"]
    with pytest.raises(simple_websocket.ConnectionError) as refused:
        simple_websocket.Client.connect(ws_url(url))
    assert refused.value.status_code == 426
    upstream.enqueue(fake.text("over http"))
    assert collect_text(http_create(url, input="q")) == "over http"


def test_enabled_handshake_upgrades_on_the_post_path(gateway):
    raw = RawSocket(gateway)
    try:
        assert raw.status == 101 and raw.headers["upgrade"].lower() == "websocket"
    finally:
        raw.close()


@pytest.mark.parametrize("missing", ["Sec-WebSocket-Version", "Sec-WebSocket-Key"])
def test_malformed_handshake_is_a_400(gateway, missing):
    raw = handshake(gateway, omit=(missing,))
    assert raw.status == 400, (raw.status, raw.body)
    assert raw.json()["error"]["type"] == "invalid_request_error"


def test_maximum_connection_age_sends_limit_error_then_closes(make_gateway, upstream):
    url = make_gateway(llm_api_base=upstream.base_url, ws_max_connection_age_s=1.0)
    upstream.enqueue(fake.text("in time"))
    opened = time.monotonic()
    with Socket(url) as ws:
        _, final = ws.completed(input="quick", store=False)
        assert collect_text(final) == "in time"
        frame = ws.receive(timeout=5)
        elapsed = time.monotonic() - opened
        assert frame["type"] == "error", frame
        assert frame["error"]["code"] == "websocket_connection_limit_reached", frame
        assert frame["error"]["message"].startswith("Responses websocket connection limit reached"), frame
        assert 0.8 <= elapsed <= 3.0, f"limit frame after {elapsed:.2f}s (limit 1s)"
        with pytest.raises(simple_websocket.ConnectionClosed):
            ws.ws.receive(timeout=3)
        assert not ws.ws.connected


def test_background_true_is_rejected_as_over_http(gateway, upstream):
    with Socket(gateway) as ws:
        frame = ws.error(input="x", background=True)
    assert frame["status"] == 400 and frame["error"]["param"] == "background"
    assert chats(upstream) == []
