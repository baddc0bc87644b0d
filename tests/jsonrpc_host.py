"""A simulated agent host for the JSON-RPC delegation tests (gateway/jsonrpc): it sends
`responsesApi/call` requests over stdio (the gateway as its child process) or a WebSocket
(`/v1/jsonrpc`), and reads everything the gateway sends on a thread of its own, sorting events by
`callId` and answers by `id`. Every message it reads must be exactly one JSON-RPC object; anything
else is recorded in `problems`, which each test's teardown asserts empty."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import simple_websocket

from tests.support import ROOT

CALL_URL = "http://gateway.invalid/v1/responses"


class Host:
    def __init__(self) -> None:
        self.events: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.answers: dict[Any, dict[str, Any]] = {}
        self.order: list[str] = []            # callId of each event, in arrival order
        self.others: list[dict[str, Any]] = []
        self.received: list[dict[str, Any]] = []     # every message, in order
        self.http_url = ""                            # a gateway on the same database (set by the fixture)
        self.problems: list[str] = []
        self.ended = False
        self._cond = threading.Condition()
        self._next_id = 0

    # -- the transport's side ----------------------------------------------------------------
    def send_raw(self, text: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def deliver(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        with self._cond:
            if not isinstance(message, dict):
                self.problems.append(f"not one JSON object: {raw[:200]!r}")
                return
            self.received.append(message)
            if message.get("method") == "responsesApi/event":
                call_id = message["params"]["callId"]
                self.events[call_id].append(message["params"]["event"])
                self.order.append(call_id)
            elif "id" in message and ("result" in message or "error" in message):
                self.answers[message["id"]] = message
            else:
                self.others.append(message)
            self._cond.notify_all()

    def reader_ended(self) -> None:
        with self._cond:
            self.ended = True
            self._cond.notify_all()

    # -- the host's side ---------------------------------------------------------------------
    def send(self, message: dict[str, Any]) -> None:
        self.send_raw(json.dumps(message))

    def request(self, method: str, params: Any = None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return self._next_id

    def call(self, call_id: str, body: dict[str, Any], headers: dict[str, str] | None = None,
             url: str = CALL_URL, stream: bool = True) -> int:
        return self.request("responsesApi/call", {"conversationId": "conv-1", "callId": call_id, "url": url,
                                                  "headers": headers or {}, "body": body, "stream": stream})

    def answer(self, msg_id: Any, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while msg_id not in self.answers:
                remaining = deadline - time.monotonic()
                assert remaining > 0 and not self.ended, f"no answer to request {msg_id}"
                self._cond.wait(remaining)
            return self.answers[msg_id]

    def run_call(self, call_id: str, body: dict[str, Any], timeout: float = 20.0,
                 **kwargs: Any) -> tuple[list[dict[str, Any]], dict]:
        """One call to its answer: (its events, the answer's `result`)."""
        answer = self.answer(self.call(call_id, body, **kwargs), timeout=timeout)
        assert "result" in answer, answer
        return list(self.events[call_id]), answer["result"]

    def wait_events(self, call_id: str, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.events[call_id]) < count:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"{call_id}: {len(self.events[call_id])} events, waited for {count}"
                self._cond.wait(remaining)
            return list(self.events[call_id])


class StdioHost(Host):
    """The gateway as the host's child: `python -m gateway.jsonrpc`, messages on its stdin/stdout."""

    def __init__(self, env: dict[str, str], stderr_path: Path, *, read: bool = True) -> None:
        super().__init__()
        self.stderr_path = stderr_path
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway.jsonrpc"], cwd=ROOT, env={**os.environ, **env},
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=open(stderr_path, "wb"))
        if read:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.deliver(line)
        self.reader_ended()

    def send_raw(self, text: str) -> None:
        self.proc.stdin.write(text.encode("utf-8", "surrogatepass") + b"\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        """End of input, as when the host goes away; the process then exits by itself."""
        if not self.proc.stdin.closed:
            self.proc.stdin.close()

    def stop(self) -> int:
        self.close()
        try:
            return self.proc.wait(20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace")


class WebSocketHost(Host):
    """The host on a WebSocket to the gateway's `/v1/jsonrpc`."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None) -> None:
        super().__init__()
        self.ws = simple_websocket.Client.connect("ws" + base_url[len("http"):] + "/v1/jsonrpc", headers=headers)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            while True:
                raw = self.ws.receive()
                if raw is None:
                    break
                self.deliver(raw)
        except simple_websocket.ConnectionClosed:
            pass
        self.reader_ended()

    def send_raw(self, text: str) -> None:
        self.ws.send(text)

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:  # already closed by the gateway
            pass

    def stop(self) -> None:
        self.close()
