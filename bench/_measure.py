"""The measuring half of `bench.stream_bench`: one streamed request, CPU accounting from /proc,
and the runners that drive several targets at a given concurrency in alternating rounds."""
from __future__ import annotations

import json
import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import requests

from bench._servers import Server

MAX_ERRORS = 25  # a phase with this many failed requests stops early (server down, not noise)
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class BenchError(RuntimeError):
    pass


@dataclass
class Sample:
    ttfb: float  # response headers + first body bytes
    ttfd: float  # first text delta
    total: float  # last byte of the stream


@dataclass
class Phase:
    target: "Target"
    concurrency: int
    planned: int
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    capped: bool = False
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds used during the measured part

    @property
    def path(self) -> str:
        return self.target.name

    @property
    def rps(self) -> float:
        return len(self.samples) / self.elapsed if self.elapsed else 0.0

    def pct(self, attr: str, q: float) -> float:
        values = sorted(getattr(s, attr) for s in self.samples)
        if not values:
            return math.nan
        return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]  # nearest rank


# --- one streamed request ------------------------------------------------------------------------

def chat_first(event: bytes) -> bool:
    """A chat chunk carrying text (the role chunk's empty content does not count)."""
    for line in event.split(b"\n"):
        if line.startswith(b"data:") and line[5:].strip() != b"[DONE]":
            chunk = json.loads(line[5:])
            return any((c.get("delta") or {}).get("content") for c in chunk.get("choices") or [])
    return False


def responses_first(event: bytes) -> bool:
    return event.startswith(b"event: response.output_text.delta\n")


def chat_check(body: bytes, tokens: int | None) -> None:
    deltas = body.count(b'"delta":{"content":"') - body.count(b'"delta":{"content":""')
    if (tokens is not None and deltas != tokens) or not body.rstrip().endswith(b"data: [DONE]"):
        raise BenchError(f"chat stream: {deltas} content deltas (want {tokens}) or no [DONE]")


def responses_check(body: bytes, tokens: int | None) -> None:
    """`tokens` None: a real model's stream (fewer deltas than tokens), which only has to end."""
    deltas = body.count(b"event: response.output_text.delta\n")
    ended = b"event: response.completed\n" in body or b"event: response.incomplete\n" in body
    if (tokens is not None and deltas != tokens) or not ended:
        raise BenchError(f"responses stream: {deltas} text deltas (want {tokens}) or no terminal event")


@dataclass
class Target:
    name: str                        # what the report calls it: "<upstream> <kind> <path> <client>"
    url: str
    body: bytes
    is_first: Callable[[bytes], bool]
    check: Callable[[bytes, int | None], None]
    gateway: str | None = None       # the server whose CPU counts as the gateway's (None: direct)
    new_connection: bool = False     # each request on a fresh TCP connection (Connection: close)
    key: tuple = ()                  # (upstream, kind, path, client) for summaries


def stream_once(session: requests.Session, target: Target, tokens: int | None) -> Sample:
    headers = {"Content-Type": "application/json"}
    if target.new_connection:
        headers["Connection"] = "close"  # the server closes it after the reply: the next request connects anew
    t0 = time.perf_counter()
    resp = session.post(target.url, data=target.body, headers=headers, stream=True, timeout=(5, 60))
    try:
        if resp.status_code != 200:
            raise BenchError(f"HTTP {resp.status_code}: {resp.text[:200]}")
        raw, buf, scanned = resp.raw, bytearray(), 0
        ttfb = ttfd = None
        while True:
            chunk = raw.read1(65536)
            if not chunk:
                break
            if ttfb is None:
                ttfb = time.perf_counter() - t0
            buf += chunk
            while ttfd is None:  # look at complete events only, until the first text delta
                end = buf.find(b"\n\n", scanned)
                if end < 0:
                    break
                if target.is_first(bytes(buf[scanned:end])):
                    ttfd = time.perf_counter() - t0
                scanned = end + 2
        total = time.perf_counter() - t0
    finally:
        resp.close()
    target.check(bytes(buf), tokens)  # after the clock stopped
    if ttfb is None or ttfd is None:
        raise BenchError("stream ended without a text delta")
    return Sample(ttfb, ttfd, total)


# --- phases ----------------------------------------------------------------------------------------

def _proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def _tree_cpu(root: int) -> float:
    """CPU seconds of `root` and its direct children (gunicorn master + workers); Linux only."""
    total = _proc_cpu(root)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == root:
                        total += _proc_cpu(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return total


def _machine_ticks() -> tuple[float, float]:
    """(busy, steal) CPU seconds of all CPUs since boot (/proc/stat): busy is user+nice+system+irq+
    softirq; steal is time the hypervisor gave our virtual CPUs to someone else."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]] + [0] * 8
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks[:8]
    return (user + nice + system + irq + softirq) / CLK_TCK, steal / CLK_TCK


def _machine_busy() -> float:
    return _machine_ticks()[0]


def _tcp_counters() -> dict[str, float]:
    """Machine-wide TCP counters (/proc/net/netstat) that explain ~1 s latency outliers: a full
    listen queue drops the SYN and the connecting side retransmits it after 1 s."""
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    out: dict[str, float] = {}
    for head, values in zip(lines[::2], lines[1::2]):
        for name, value in zip(head.split()[1:], values.split()[1:]):
            if name in ("ListenOverflows", "TCPSynRetrans"):
                out[name] = float(value)
    return out


def cpu_snapshot(servers: dict[str, Server]) -> dict[str, float]:
    """CPU seconds so far of this client, each server's process tree and the whole machine,
    plus the machine's TCP listen-overflow / SYN-retransmit counters."""
    snap = {"client": time.process_time()}
    try:
        for name, server in servers.items():
            snap[name] = _tree_cpu(server.pid)
        snap["machine"], snap["steal"] = _machine_ticks()
        snap.update(_tcp_counters())
    except (OSError, ValueError, IndexError):
        pass  # no /proc: the report leaves the CPU columns out
    return snap


def background_cores(seconds: float = 1.0) -> float | None:
    """How many CPUs other processes keep busy right now (sampled over `seconds`)."""
    try:
        before, t0 = _machine_busy(), time.perf_counter()
        time.sleep(seconds)
        return (_machine_busy() - before) / (time.perf_counter() - t0)
    except (OSError, ValueError, IndexError):
        return None


class Runner:
    """`concurrency` threads, each with its own `requests.Session` (one kept-alive connection),
    sending `target`'s request; `batch()` runs a bounded number of requests and records them
    into `phase`. Kept open across the interleaved rounds so connections stay warm."""

    def __init__(self, target: Target, concurrency: int, planned: int, tokens: int | None,
                 servers: dict[str, Server]) -> None:
        self.target, self.concurrency, self.tokens, self.servers = target, concurrency, tokens, servers
        self.phase = Phase(target, concurrency, planned)
        self.pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=f"{target.name}-c{concurrency}")
        self.local, self.sessions, self.lock = threading.local(), [], threading.Lock()
        self.stop = threading.Event()  # too many errors, or shutting down: no new requests
        self._batch: list[Sample] = []

    def _session(self) -> requests.Session:
        if not hasattr(self.local, "s"):
            self.local.s = requests.Session()
            self.local.s.trust_env = False  # loopback: never a proxy, and no per-request env scan
            with self.lock:
                self.sessions.append(self.local.s)
        return self.local.s

    def _loop(self, counter: list[int], limit: int, record: bool, deadline: float) -> None:
        session = self._session()
        while not self.stop.is_set():
            with self.lock:
                if counter[0] >= limit:
                    return
                counter[0] += 1
            if time.perf_counter() >= deadline:
                self.phase.capped = True
                return
            try:
                sample = stream_once(session, self.target, self.tokens)
            except (BenchError, requests.RequestException, OSError, ValueError) as exc:
                with self.lock:
                    self.phase.errors.append(f"{type(exc).__name__}: {exc}"[:300])
                    if len(self.phase.errors) >= MAX_ERRORS:
                        self.stop.set()
                continue
            if record:
                with self.lock:
                    self._batch.append(sample)

    def batch(self, n: int, deadline: float, record: bool = True) -> None:
        """Run up to `n` requests; only a batch that ran to its end is added to the phase (an
        interrupted one has no consistent elapsed time)."""
        self._batch = []
        before = cpu_snapshot(self.servers)
        t0 = time.perf_counter()
        counter = [0]  # requests started by this batch, shared by its threads
        futures = [self.pool.submit(self._loop, counter, n, record, deadline) for _ in range(self.concurrency)]
        for future in futures:
            future.result()
        if record:
            self.phase.elapsed += time.perf_counter() - t0
            self.phase.samples += self._batch
            after = cpu_snapshot(self.servers)
            for key in before.keys() & after.keys():
                self.phase.cpu[key] = self.phase.cpu.get(key, 0.0) + after[key] - before[key]
        else:
            self.phase.errors.clear()  # warm-up failures only matter if they persist

    def close(self) -> None:
        self.stop.set()  # on Ctrl-C: in-flight requests finish (each bounded by its timeout), no new ones
        self.pool.shutdown(wait=True, cancel_futures=True)
        for session in self.sessions:
            session.close()


def run_level(targets: list[Target], concurrency: int, planned: int, warmup: int, rounds: int,
              tokens: int | None, servers: dict[str, Server], deadline: float, out: list[Phase]) -> list[Phase]:
    """Warm up, then `rounds` rounds alternating the targets, so a load change on the shared
    machine hits every path alike; stops starting requests at `deadline`. The phases are appended
    to `out` at once, so an interrupted level still reports what it measured."""
    runners = [Runner(t, concurrency, planned, tokens, servers) for t in targets]
    out += [runner.phase for runner in runners]
    try:
        for runner in runners:
            runner.batch(warmup, deadline, record=False)
        rounds = max(1, min(rounds, planned))
        for r in range(rounds):
            for i, runner in enumerate(runners):
                n = planned * (r + 1) // rounds - planned * r // rounds
                runs_left = (rounds - r) * len(runners) - i
                now = time.perf_counter()
                runner.batch(n, now + max(0.0, deadline - now) / runs_left)
    finally:
        for runner in runners:
            runner.close()
    return [runner.phase for runner in runners]
