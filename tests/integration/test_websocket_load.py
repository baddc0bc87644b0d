"""WebSocket under load: 16 connections run chains in parallel while one client stalls.

A dedicated gunicorn gateway (one gthread worker, so "the gateway's memory" is one process) runs
with a 64 KiB outbox per connection (`WS_SEND_BUFFER_BYTES`) and a 1 s send deadline
(`WS_SEND_TIMEOUT_S`), against this module's own fake vLLM (auto responder: "You said: …").

One client (`RawSocket`, a hand-made client on a TCP socket with a tiny receive buffer) asks for a
128 MiB stored reply, reads its `response.created` frame and then never reads again: a library
client would keep reading on its own thread. Meanwhile 16 `simple_websocket` connections each run
a 5-turn `store:false` chain sending only the new input. Checked afterwards:

- every chain finished, promptly, and each turn sent upstream exactly its own history;
- the stalled connection was dropped by the server within a few seconds (its response is stored
  as `failed`, and draining the socket ends in EOF/reset after far less than the reply's size);
- the worker's memory stayed bounded.

Memory: the worker's `VmHWM` (peak resident set) and `VmRSS` from `/proc/<pid>/status`, before
(after a warm-up round) and after. The peak is what matters — an unbounded outbox would hold the
whole reply (128 MiB of text in the builder plus as much again as queued JSON frames) at some
instant even if Python handed the memory back afterwards — and, unlike `tracemalloc`, it needs
nothing inside the gateway process and sees every allocation, native ones included. What the
gateway may legitimately hold is proportional to what it processed before the client's kernel
buffers filled (≈3 MB on loopback), ×10 or so with the frames, the failed response it stores and
malloc's retention: 38–50 MiB of peak growth measured. The bound, 96 MiB, is under the reply's own
size; with the outbox made unbounded (WS_SEND_BUFFER_BYTES=1 GiB, WS_SEND_TIMEOUT_S=30) even a
64 MiB reply grew the worker by over 300 MiB within a second.
"""
from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.checks import collect_text
from tests.fakes.scripts import Script
from tests.fakes.upstream import FakeUpstream
from tests.integration.test_websocket import MODEL, RawSocket, Socket
from tests.support import GunicornGateway

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

CONNECTIONS = 16
TURNS = 5
SEND_BUFFER = 64 * 1024
SEND_TIMEOUT_S = 1.0
PIECE = "x" * (64 * 1024)
PIECES = 2048                       # a 128 MiB reply
CHAINS_DEADLINE_S = 20.0            # all 16 chains, end to end (they take well under 2 s unloaded)
DROP_DEADLINE_S = 8.0               # request sent → stalled response recorded as failed
PEAK_GROWTH_LIMIT_KB = 96 * 1024    # below the reply itself (buffering it would cost ≥ 2× the reply)


@pytest.fixture(scope="module")
def load_upstream():
    fake = FakeUpstream(models=(MODEL,))
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def load_gateway(load_upstream, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ws-load")
    server = GunicornGateway.for_upstream(load_upstream.base_url, tmp, UPSTREAM_TIMEOUT_S="2,30",
                                          GATEWAY_THREADS="48", WS_SEND_BUFFER_BYTES=str(SEND_BUFFER),
                                          WS_SEND_TIMEOUT_S=str(SEND_TIMEOUT_S), LOG_LEVEL="WARNING")
    server.start()
    yield server
    server.stop()


def worker_pid(server: GunicornGateway) -> int:
    children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text().split()
    assert len(children) == 1, f"expected one gunicorn worker, found {children}"
    return int(children[0])


def memory_kb(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def run_chain(url: str, index: int, turns: int, results: dict[int, Any]) -> None:
    started = time.monotonic()
    try:
        finals = []
        with Socket(url) as ws:
            previous = None
            for turn in range(turns):
                body: dict[str, Any] = {"input": f"chain {index} turn {turn}", "store": False}
                if previous:
                    body["previous_response_id"] = previous
                _, final = ws.completed(**body)
                assert collect_text(final) == f"You said: chain {index} turn {turn}", final["output"]
                assert final["previous_response_id"] == previous
                finals.append(final)
                previous = final["id"]
        results[index] = (time.monotonic() - started, finals)
    except BaseException as exc:  # reported by the main thread
        results[index] = exc


def run_chains(url: str, turns: int) -> tuple[dict[int, Any], float]:
    results: dict[int, Any] = {}
    threads = [threading.Thread(target=run_chain, args=(url, i, turns, results), daemon=True)
               for i in range(CONNECTIONS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.1, CHAINS_DEADLINE_S - (time.monotonic() - started)))
    return results, time.monotonic() - started


def drain(raw: RawSocket, deadline_s: float) -> tuple[int, str]:
    """Read everything left; how the connection ended: 'eof', 'reset' or 'open' (deadline hit)."""
    raw.sock.settimeout(0.5)
    received = len(raw._buf)
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            data = raw.sock.recv(1 << 20)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return received, "reset"
        if not data:
            return received, "eof"
        received += len(data)
    return received, "open"


def test_sixteen_parallel_chains_finish_while_a_stalled_client_is_dropped(load_gateway, load_upstream):
    url = load_gateway.url
    pid = worker_pid(load_gateway)

    # Warm-up round: threads, pools, imports and the database are in place before measuring.
    load_upstream.reset()
    results, _ = run_chains(url, 1)
    assert all(isinstance(r, tuple) for r in results.values()) and len(results) == CONNECTIONS, results
    load_upstream.reset()
    before = memory_kb(pid)

    # The stalled client: a huge stored reply, read up to `response.created`, then never again.
    load_upstream.enqueue(Script(deltas=[{"content": PIECE}] * PIECES))
    raw = RawSocket(url, rcvbuf=4096)
    try:
        assert raw.status == 101
        sent_at = time.monotonic()
        raw.send_text('{"type":"response.create","model":"%s","input":"flood me","store":true}' % MODEL)
        created = raw.recv_json()
        assert created["type"] == "response.created", created
        stalled_id = created["response"]["id"]
        while load_upstream.pending:  # the flood is on its way before the chains start
            assert time.monotonic() - sent_at < 5, "the stalled request never reached the upstream"
            time.sleep(0.01)

        results, chains_s = run_chains(url, TURNS)

        # The stalled response ends as failed and is stored (store:true), within a few seconds.
        stored = None
        while time.monotonic() - sent_at < DROP_DEADLINE_S:
            resp = requests.get(f"{url}/v1/responses/{stalled_id}", timeout=5)
            if resp.status_code == 200 and resp.json()["status"] != "in_progress":
                stored = resp.json()
                break
            time.sleep(0.1)
        dropped_after = time.monotonic() - sent_at
        # The socket was closed by the server: reading now ends in EOF/reset, not in the rest of the reply.
        received, ending = drain(raw, 5.0)
    finally:
        raw.close()
    after = memory_kb(pid)

    failures = {i: r for i, r in results.items() if not isinstance(r, tuple)}
    assert not failures, f"chains failed: {failures}"
    assert len(results) == CONNECTIONS, f"only {len(results)} of {CONNECTIONS} chains finished in {chains_s:.1f}s"
    slowest = max(r[0] for r in results.values())
    assert chains_s < CHAINS_DEADLINE_S and slowest < CHAINS_DEADLINE_S, (chains_s, slowest)
    for index, (_, finals) in results.items():
        for final in finals:
            assert final["status"] == "completed"

    # Each turn sent upstream exactly its own chain's history, in order, and nothing else.
    chats = load_upstream.chat_requests()
    assert len(chats) == CONNECTIONS * TURNS + 1, len(chats)
    by_last = {}
    for chat in chats:
        last = chat["messages"][-1]["content"]
        assert last not in by_last, f"{last!r} sent upstream twice"
        by_last[last] = chat["messages"]
    for index in range(CONNECTIONS):
        history: list[dict[str, str]] = []
        for turn in range(TURNS):
            said = f"chain {index} turn {turn}"
            history.append({"role": "user", "content": said})
            assert by_last[said] == history, f"chain {index} turn {turn}: {by_last[said]}"
            history = history + [{"role": "assistant", "content": f"You said: {said}"}]

    assert stored is not None, f"the stalled response was not recorded within {DROP_DEADLINE_S}s"
    assert stored["status"] == "failed" and stored["error"]["code"] == "server_error", stored
    assert dropped_after < DROP_DEADLINE_S
    assert ending in ("eof", "reset"), f"the stalled socket is still open after draining {received} bytes"
    assert received < len(PIECE) * PIECES // 4, f"{received} bytes of the reply still reached the stalled client"
    assert "client stopped reading" in load_gateway.log_text()

    growth = after["VmHWM"] - before["VmHWM"]
    print(f"\nchains: {chains_s:.2f}s (slowest {slowest:.2f}s); stalled response failed after {dropped_after:.2f}s, "
          f"{received} bytes drained ({ending}); worker VmRSS {before['VmRSS']} → {after['VmRSS']} kB, "
          f"VmHWM {before['VmHWM']} → {after['VmHWM']} kB")
    assert growth < PEAK_GROWTH_LIMIT_KB, f"worker peak RSS grew by {growth} kB: {before} → {after}"
    assert after["VmRSS"] - before["VmRSS"] < PEAK_GROWTH_LIMIT_KB, (before, after)
    assert "Traceback" not in load_gateway.log_text(), load_gateway.log_text()[-4000:]
