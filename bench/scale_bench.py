"""How many sessions one gateway holds with its shipped defaults: concurrent SSE streams, concurrent
WebSockets, both at once, and the memory that takes.

    python -m bench.scale_bench                 # 1,000 streams, 500 WebSockets, then both together
    python -m bench.scale_bench --write         # ... and rewrite the scale section of docs/benchmarks.md
    make bench-scale

The upstream is the fake, slow like a busy GPU: its first token after `--first-token-ms` and every
next one as long again. Each session sends `store: false` like Codex and is read to its terminal
event; its time to first delta is measured from its request (for a WebSocket: from its
`response.create`, sent once the connection is open, and its handshake is timed too). Sessions
start evenly over `--ramp-s`, shorter than one reply, so at the peak they are all open at once. A
session that waited for a free gateway thread shows as a time to first delta (or a handshake) of
at least one whole reply. The gateway runs with
nothing set but its upstream and database, so the figures are those of the defaults in
gunicorn.conf.py. Every client, the fake and the gateway share this machine's cores.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench._report import write_doc
from bench._servers import start_fake, start_gateway, stop_all, stop_on_sigterm

BEGIN, END = "<!-- bench:scale:begin -->", "<!-- bench:scale:end -->"
MODEL = "fake-model"


@dataclass
class Phase:
    name: str
    sessions: int
    ttfd_s: list[float] = field(default_factory=list)
    open_s: list[float] = field(default_factory=list)     # WebSocket handshakes
    failures: list[str] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    wall_s: float = 0.0
    cpu_s: float = 0.0          # the gateway's, over the phase
    spans: list[tuple[float, float]] = field(default_factory=list)   # each session's (start, end)

    def peak_concurrency(self) -> int:
        edges = sorted([(start, 1) for start, _ in self.spans] + [(end, -1) for _, end in self.spans])
        peak = current = 0
        for _, step in edges:
            current += step
            peak = max(peak, current)
        return peak

    def row(self, reply_s: float) -> str:
        waits = sum(t >= reply_s for t in self.ttfd_s)
        q = statistics.quantiles(self.ttfd_s, n=20) if len(self.ttfd_s) > 1 else [0.0] * 19
        opened = f"{max(self.open_s):.2f}" if self.open_s else "–"
        return (f"| {self.name} | {self.sessions} | {self.peak_concurrency()} | {len(self.ttfd_s)} "
                f"| {len(self.failures)} | "
                f"{statistics.median(self.ttfd_s) if self.ttfd_s else float('nan'):.2f} | {q[18]:.2f} | "
                f"{max(self.ttfd_s, default=float('nan')):.2f} | {waits} | {opened} | {self.peak_rss_mb:.0f} | "
                f"{self.wall_s:.1f} | {self.cpu_s:.1f} |")


def tree_pids(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [pid] + [int(p) for p in children.read().split()]
    except OSError:
        return [pid]


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its children."""
    total = 0
    for each in tree_pids(pid):
        try:
            with open(f"/proc/{each}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (gunicorn's master and workers)."""
    total = 0
    for each in tree_pids(pid):
        try:
            with open(f"/proc/{each}/status") as status:
                total += next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return total / 1024


class MemoryWatch(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            self.peak = max(self.peak, tree_rss_mb(self.pid))


async def sse_session(http: aiohttp.ClientSession, url: str, phase: Phase) -> None:
    started = time.monotonic()
    first = None
    body = {"model": MODEL, "input": "hold this", "stream": True, "store": False}
    try:
        async with http.post(f"{url}/v1/responses", json=body) as resp:
            if resp.status != 200:
                phase.failures.append(f"HTTP {resp.status}")
                return
            async for line in resp.content:
                if first is None and line.startswith(b"event: response.output_text.delta"):
                    first = time.monotonic() - started
                if line.startswith(b"event: response.completed"):
                    phase.ttfd_s.append(first if first is not None else float("nan"))
                    return
                if line.startswith((b"event: response.failed", b"event: response.incomplete")):
                    phase.failures.append(line.decode().strip())
                    return
        phase.failures.append("stream ended without a terminal event")
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        phase.failures.append(exc.__class__.__name__)


async def ws_session(http: aiohttp.ClientSession, url: str, phase: Phase) -> None:
    ws_url = url.replace("http://", "ws://") + "/v1/responses"
    connecting = time.monotonic()
    try:
        async with http.ws_connect(ws_url, max_msg_size=0) as ws:
            phase.open_s.append(time.monotonic() - connecting)
            started = time.monotonic()
            first = None
            await ws.send_str(json.dumps({"type": "response.create", "model": MODEL, "input": "hold this",
                                          "store": False}))
            async for message in ws:
                event = json.loads(message.data)
                if first is None and event["type"] == "response.output_text.delta":
                    first = time.monotonic() - started
                if event["type"] == "response.completed":
                    phase.ttfd_s.append(first if first is not None else float("nan"))
                    return
                if event["type"] in ("response.failed", "response.incomplete", "error"):
                    phase.failures.append(event["type"])
                    return
            phase.failures.append("socket closed before the terminal event")
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        phase.failures.append(exc.__class__.__name__)


async def ramped(delay_s: float, session, phase: Phase) -> None:
    """Start a session after `delay_s` and note its span (for the peak concurrency)."""
    await asyncio.sleep(delay_s)
    started = time.monotonic()
    try:
        await session
    finally:
        phase.spans.append((started, time.monotonic()))


async def run_phase(url: str, gateway_pid: int, name: str, streams: int, sockets: int, timeout_s: float,
                    ramp_s: float) -> Phase:
    phase = Phase(name, streams + sockets)
    watch = MemoryWatch(gateway_pid)
    watch.start()
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    started, cpu_before = time.monotonic(), tree_cpu_s(gateway_pid)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_s)) as http:
        sessions = [sse_session(http, url, phase) for _ in range(streams)]
        sessions += [ws_session(http, url, phase) for _ in range(sockets)]
        step = ramp_s / max(1, len(sessions))
        await asyncio.gather(*(ramped(index * step, session, phase) for index, session in enumerate(sessions)))
    phase.wall_s = time.monotonic() - started
    phase.cpu_s = tree_cpu_s(gateway_pid) - cpu_before
    watch.done.set()
    watch.join()
    phase.peak_rss_mb = watch.peak
    return phase


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.scale_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--streams", type=int, default=1000)
    p.add_argument("--websockets", type=int, default=500)
    p.add_argument("--first-token-ms", type=float, default=250.0)
    p.add_argument("--tokens", type=int, default=40, help="deltas per reply (each after --first-token-ms)")
    p.add_argument("--ramp-s", type=float, default=5.0,
                   help="sessions start evenly over this long (shorter than a reply, so all are open at once)")
    p.add_argument("--timeout-s", type=float, default=120.0, help="per session")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                   help="a gateway setting to try instead of its default (repeatable)")
    p.add_argument("--write", action="store_true", help="rewrite the scale section of docs/benchmarks.md")
    args = p.parse_args(argv)
    stop_on_sigterm()
    reply_s = args.tokens * args.first_token_ms / 1000
    fake = gateway = None
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmp:
        try:
            fake = start_fake(Path(tmp), MODEL, tokens=args.tokens, delay_ms=args.first_token_ms)
            tried = dict(pair.split("=", 1) for pair in args.env)
            gateway = start_gateway(Path(tmp), fake.url, {"DATABASE_URL": f"sqlite:///{tmp}/gateway.db",
                                                          "LOG_LEVEL": "WARNING", **tried}, ready_path="/ready")
            idle_mb = tree_rss_mb(gateway.pid)
            phases = []
            for name, streams, sockets in (("SSE streams", args.streams, 0), ("WebSockets", 0, args.websockets),
                                           ("both at once", args.streams, args.websockets)):
                phase = asyncio.run(run_phase(gateway.url, gateway.pid, name, streams, sockets, args.timeout_s,
                                              args.ramp_s))
                phases.append(phase)
                print(f"{name}: {len(phase.ttfd_s)}/{phase.sessions} completed, {len(phase.failures)} failed, "
                      f"peak {phase.peak_rss_mb:.0f} MB", flush=True)
        finally:
            stop_all(gateway, fake)
    text = report(phases, args, reply_s, idle_mb)
    print(text)
    if args.write and args.env:
        print("--write records the shipped defaults only; not written", file=sys.stderr)
    elif args.write:
        write_doc(text, BEGIN, END)
    return 0 if all(not ph.failures and len(ph.ttfd_s) == ph.sessions for ph in phases) else 1


def report(phases: list[Phase], args: argparse.Namespace, reply_s: float, idle_mb: float) -> str:
    cores = os.cpu_count()
    settings = ", ".join(args.env) or "the shipped defaults (gunicorn.conf.py)"
    lines = [f"`python -m bench.scale_bench` on {time.strftime('%Y-%m-%d')}, {cores} cores, {settings}; "
             f"fake upstream: first token after {args.first_token_ms:g} ms, {args.tokens} "
             f"tokens, so one reply takes {reply_s:g} s; sessions start evenly over {args.ramp_s:g} s. "
             f"Gateway at rest: {idle_mb:.0f} MB.", "",
             "| phase | sessions | at once (peak) | completed | failed | TTFD median (s) | p95 (s) | max (s) "
             "| waited ≥ one reply "
             "| slowest WebSocket open (s) | peak RSS (MB) | wall (s) | gateway CPU (s) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [phase.row(reply_s) for phase in phases]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
