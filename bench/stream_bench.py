"""`make bench`: the same 20-token streams, direct to the upstream and through the gateway.

    python -m bench.stream_bench            # print a Markdown report (stdout; progress on stderr)
    python -m bench.stream_bench --write    # ... and rewrite the results in docs/benchmarks.md

The fake upstream (`tests.fakes.upstream --tokens N --delay-ms D`) runs in its own process; the
gateway runs under gunicorn with the shipped gunicorn.conf.py (default workers/threads unless
--workers/--threads), with only host/port/upstream/db and SKIP_LLM_READY_CHECK=1 set. For each
concurrency (1, then 16) both paths get a warm-up, then N measured requests split into rounds
that alternate direct/gateway (a load change on the shared machine hits both alike). A hard
wall-clock cap (--max-seconds) stops new requests; the report covers whatever completed.

Time to first text delta (TTFD) is taken when the bytes of the first event carrying text arrive:
direct, the first chunk whose `delta.content` is non-empty; gateway, the first
`response.output_text.delta` event. Each stream is checked after its clock stopped (N deltas and
`[DONE]` / `response.completed`). CPU per request comes from /proc for this client, the gateway's
gunicorn processes and the fake; "other load" is what the rest of the machine used meanwhile.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import requests

from bench._servers import ROOT, Server, start_fake, start_gateway, stop_all, stop_on_sigterm

MODEL = "bench-model"
PROMPT = "Stream me twenty words, please."
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"
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
    path: str
    concurrency: int
    planned: int
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    capped: bool = False
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds used during the measured part

    @property
    def rps(self) -> float:
        return len(self.samples) / self.elapsed if self.elapsed else 0.0

    def pct(self, attr: str, q: float) -> float:
        values = sorted(getattr(s, attr) for s in self.samples)
        if not values:
            return math.nan
        return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]  # nearest rank


# --- one streamed request ------------------------------------------------------------------------

def _direct_first(event: bytes) -> bool:
    for line in event.split(b"\n"):
        if line.startswith(b"data:") and line[5:].strip() != b"[DONE]":
            chunk = json.loads(line[5:])
            return any((c.get("delta") or {}).get("content") for c in chunk.get("choices") or [])
    return False


def _gateway_first(event: bytes) -> bool:
    return event.startswith(b"event: response.output_text.delta\n")


def _direct_check(body: bytes, tokens: int) -> None:
    deltas = body.count(b'"delta":{"content":"') - body.count(b'"delta":{"content":""')
    if deltas != tokens or not body.rstrip().endswith(b"data: [DONE]"):
        raise BenchError(f"direct stream: {deltas} content deltas (want {tokens}) or no [DONE]")


def _gateway_check(body: bytes, tokens: int) -> None:
    deltas = body.count(b"event: response.output_text.delta\n")
    if deltas != tokens or b"event: response.completed\n" not in body:
        raise BenchError(f"gateway stream: {deltas} text deltas (want {tokens}) or no response.completed")


@dataclass
class Target:
    name: str
    url: str
    body: bytes
    is_first: Callable[[bytes], bool]
    check: Callable[[bytes, int], None]


def stream_once(session: requests.Session, target: Target, tokens: int) -> Sample:
    t0 = time.perf_counter()
    resp = session.post(target.url, data=target.body, headers={"Content-Type": "application/json"},
                        stream=True, timeout=(5, 10))  # connect, per-read
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

    def __init__(self, target: Target, concurrency: int, planned: int, tokens: int,
                 servers: dict[str, Server]) -> None:
        self.target, self.concurrency, self.tokens, self.servers = target, concurrency, tokens, servers
        self.phase = Phase(target.name, concurrency, planned)
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


def run_level(targets: list[Target], concurrency: int, planned: int, args: argparse.Namespace,
              servers: dict[str, Server], deadline: float, out: list[Phase]) -> list[Phase]:
    """Warm up, then `args.rounds` rounds alternating the targets, so a load change on the shared
    machine hits both paths alike; stops starting requests at `deadline`. The phases are appended
    to `out` at once, so an interrupted level still reports what it measured."""
    runners = [Runner(t, concurrency, planned, args.tokens, servers) for t in targets]
    out += [runner.phase for runner in runners]
    try:
        for runner in runners:
            runner.batch(args.warmup, deadline, record=False)
        rounds = max(1, min(args.rounds, planned))
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


# --- report ----------------------------------------------------------------------------------------

def _ms(x: float) -> str:
    return "–" if math.isnan(x) else f"{x * 1000:.2f}"


def _other_cores(p: Phase) -> str:
    """CPUs used by processes outside this benchmark, and stolen by the hypervisor, during the
    phase: the noise indicators of a shared machine."""
    if "machine" not in p.cpu or not p.elapsed:
        return "–"
    ours = sum(p.cpu.get(k, 0.0) for k in ("client", "gateway", "upstream"))
    return f"{max(0.0, p.cpu['machine'] - ours) / p.elapsed:.2f} · {p.cpu.get('steal', 0.0) / p.elapsed:.2f}"


def report(phases: list[Phase], args: argparse.Namespace, started: datetime, total_s: float,
           idle_load: float | None, interrupted: bool = False) -> str:
    lines = [
        *(["- **Interrupted**: partial results, not comparable with complete runs."] if interrupted else []),
        f"- Run: {started:%Y-%m-%d %H:%M} UTC, gateway code `{_revision()}`, {total_s:.0f} s wall clock.",
        f"- Requests: {args.warmup} warm-up per path and concurrency, then the measured ones in {args.rounds} "
        f"rounds alternating direct/gateway; gateway requests "
        f"{'with `store: false`' if args.no_store else 'stored (API default `store: true`)'}.",
        f"- Upstream: fake, `--tokens {args.tokens} --delay-ms {args.delay_ms:g}`. Gateway: gunicorn with "
        f"gunicorn.conf.py, workers={args.workers or f'default ({max(2, 2 * (os.cpu_count() or 1))})'}, "
        f"threads={args.threads or 'default (32)'}.",
        f"- Machine: {os.cpu_count()} CPUs ({_cpu_model()}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; client, gateway and upstream share these CPUs over loopback. "
        f"Other processes' load just before the run: "
        f"{'unknown' if idle_load is None else f'{idle_load:.2f} CPUs'}.",
        "",
        "| path | conc. | done / planned | errors | TTFD p50 ms | TTFD p99 ms | first byte p50 ms "
        "| stream p50 ms | stream p99 ms | req/s | CPU ms/req client · gateway · upstream | other load · steal (CPUs) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for p in phases:
        n = max(len(p.samples), 1)
        cpu = " · ".join(f"{p.cpu[k] * 1000 / n:.2f}" if k in p.cpu else "–" for k in ("client", "gateway", "upstream"))
        lines.append(
            f"| {p.path} | {p.concurrency} | {len(p.samples)} / {p.planned}{' (capped)' if p.capped else ''} "
            f"| {len(p.errors)} | {_ms(p.pct('ttfd', .5))} | {_ms(p.pct('ttfd', .99))} | {_ms(p.pct('ttfb', .5))} "
            f"| {_ms(p.pct('total', .5))} | {_ms(p.pct('total', .99))} | {p.rps:.0f} | {cpu} | {_other_cores(p)} |")
    lines.append("")
    targets = target_results(phases)
    if targets.get("added_ttfd_ms") is not None:
        added = targets["added_ttfd_ms"]
        verdict = "**met**" if added <= 2.0 else "**missed**"
        lines.append(f"- Gateway added p50 TTFD at concurrency 1: **{added:+.2f} ms** "
                     f"(target ≤ 2 ms: {verdict}).")
    if targets.get("share_pct") is not None:
        share, by = targets["share_pct"], {(p.path, p.concurrency): p for p in phases}
        verdict = "**met**" if share >= 50 else "**missed**"
        lines.append(f"- Gateway req/s at concurrency 16: **{by['gateway', 16].rps:.0f} vs {by['direct', 16].rps:.0f} "
                     f"direct = {share:.0f}%** (target ≥ 50%: {verdict}).")
    for p in phases:
        drops, retrans = int(p.cpu.get("ListenOverflows", 0)), int(p.cpu.get("TCPSynRetrans", 0))
        if drops or retrans:
            lines.append(f"- {p.path} c={p.concurrency}: the machine counted {drops} TCP listen-queue overflows and "
                         f"{retrans} SYN retransmits during this phase (each retransmit costs its connection ~1 s).")
    for p in phases:
        if p.errors:
            lines.append(f"- {p.path} c={p.concurrency}: {len(p.errors)} errors, first: `{p.errors[0]}`")
    return "\n".join(lines) + "\n"


def target_results(phases: list[Phase]) -> dict[str, float | None]:
    """The two numbers the targets are about: added p50 TTFD at c=1 (ms) and the gateway's share of
    direct req/s at c=16 (%); None where a phase is missing or completed nothing."""
    by = {(p.path, p.concurrency): p for p in phases if p.samples}
    d1, g1, d16, g16 = (by.get(k) for k in (("direct", 1), ("gateway", 1), ("direct", 16), ("gateway", 16)))
    return {"added_ttfd_ms": (g1.pct("ttfd", .5) - d1.pct("ttfd", .5)) * 1000 if d1 and g1 else None,
            "share_pct": 100 * g16.rps / d16.rps if d16 and g16 and d16.rps else None}


def summary(phases: list[Phase]) -> dict:
    """What `--json` writes: the target numbers and each phase's main figures."""
    return {"revision": _revision(), **target_results(phases),
            "phases": [{"path": p.path, "concurrency": p.concurrency, "done": len(p.samples), "errors": len(p.errors),
                        "ttfd_p50_ms": None if not p.samples else p.pct("ttfd", .5) * 1000, "rps": p.rps,
                        "gateway_cpu_ms": p.cpu.get("gateway", 0.0) * 1000 / max(len(p.samples), 1)}
                       for p in phases]}


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", "--no-optional-locks", *args], cwd=ROOT, capture_output=True, text=True,
                             timeout=10)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def _revision() -> str:
    """The commit measured (read-only git: no index refresh, no locks); the gateway changes quickly."""
    rev = _git("rev-parse", "--short", "HEAD") or "unknown"
    return rev + (" + uncommitted changes" if _git("status", "--porcelain", "--untracked-files=no") else "")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            match = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
        return match.group(1).strip() if match else platform.machine()
    except OSError:
        return platform.machine()


def write_doc(text: str) -> None:
    doc = DOC.read_text()
    if BEGIN not in doc or END not in doc:
        raise BenchError(f"{DOC} has no {BEGIN} … {END} section to rewrite")
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{BEGIN}\n{text}{END}{tail}")


# --- main ------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.stream_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests-c1", type=int, default=300, help="measured requests at concurrency 1 (300)")
    p.add_argument("--requests-c16", type=int, default=800, help="measured requests at concurrency 16 (800)")
    p.add_argument("--warmup", type=int, default=20, help="unmeasured requests per path and concurrency (20)")
    p.add_argument("--rounds", type=int, default=5,
                   help="measured requests are split in this many rounds alternating direct/gateway (5)")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="first wait up to this long for other processes to use < 0.2 CPUs (0: don't)")
    p.add_argument("--tokens", type=int, default=20, help="content deltas per reply (20)")
    p.add_argument("--delay-ms", type=float, default=0.0, help="fake upstream sleep before each delta (0)")
    p.add_argument("--workers", type=int, help="GATEWAY_WORKERS (default: gunicorn.conf.py's)")
    p.add_argument("--threads", type=int, help="GATEWAY_THREADS (default: gunicorn.conf.py's)")
    p.add_argument("--no-store", action="store_true",
                   help='send "store": false (skips the gateway\'s storage write; default: the API default, true)')
    p.add_argument("--max-seconds", type=float, default=120.0, help="hard cap for the whole run (120)")
    p.add_argument("--write", action="store_true", help=f"rewrite the results section of {DOC.relative_to(ROOT)}")
    p.add_argument("--json", metavar="PATH", help="also write the target numbers and phase figures as JSON")
    args = p.parse_args(argv)
    if min(args.requests_c1, args.requests_c16, args.tokens, args.rounds) < 1 or args.warmup < 0 \
            or args.max_seconds <= 0 or args.wait_quiet < 0:
        p.error("request counts, --tokens and --rounds must be ≥ 1, --warmup and --wait-quiet ≥ 0, "
                "--max-seconds > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    fake = gateway = None
    phases: list[Phase] = []
    interrupted = False
    idle_load = background_cores()
    quiet_deadline = time.monotonic() + args.wait_quiet
    while idle_load is not None and idle_load >= 0.2 and time.monotonic() < quiet_deadline:
        idle_load = background_cores(2.0)
    if idle_load is not None and idle_load > 0.25:
        print(f"warning: other processes keep {idle_load:.2f} CPUs busy; the numbers will be noisy",
              file=sys.stderr)
    started, t_start = datetime.now(timezone.utc), time.perf_counter()
    hard_deadline = t_start + args.max_seconds
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        try:
            fake = start_fake(Path(tmp), MODEL, tokens=args.tokens, delay_ms=args.delay_ms)
            env = {"SKIP_LLM_READY_CHECK": "1"}
            if args.workers:
                env["GATEWAY_WORKERS"] = str(args.workers)
            if args.threads:
                env["GATEWAY_THREADS"] = str(args.threads)
            gateway = start_gateway(Path(tmp), fake.url, env, ready_path="/health")
            servers = {"gateway": gateway, "upstream": fake}
            chat = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "stream": True,
                    "stream_options": {"include_usage": True}}  # what the gateway itself sends upstream
            targets = {
                "direct": Target("direct", f"{fake.url}/v1/chat/completions", json.dumps(chat).encode(),
                                 _direct_first, _direct_check),
                "gateway": Target("gateway", f"{gateway.url}/v1/responses",
                                  json.dumps({"model": MODEL, "input": PROMPT, "stream": True,
                                              **({"store": False} if args.no_store else {})}).encode(),
                                  _gateway_first, _gateway_check),
            }
            levels = [(1, args.requests_c1), (16, args.requests_c16)]
            print(f"fake upstream pid {fake.pid} {fake.url}, gateway pid {gateway.pid} {gateway.url}; "
                  f"cap {args.max_seconds:g} s", file=sys.stderr)
            for i, (c, n) in enumerate(levels):
                left = hard_deadline - time.perf_counter()
                if left <= 0.5:
                    print(f"wall-clock cap reached: skipping concurrency {c}", file=sys.stderr)
                    continue
                level = run_level(list(targets.values()), c, n, args, servers,
                                  time.perf_counter() + left / (len(levels) - i), phases)
                for phase in level:
                    print(f"  {phase.path:7} c={c:<2} {len(phase.samples)}/{n} in {phase.elapsed:.1f} s"
                          f"{' (capped)' if phase.capped else ''}, {len(phase.errors)} errors", file=sys.stderr)
        except KeyboardInterrupt:
            interrupted = True
            print("interrupted: reporting what completed", file=sys.stderr)
        except (BenchError, RuntimeError, OSError) as exc:
            print(f"benchmark FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        finally:
            stop_all(fake, gateway)
    if not phases:
        print("no phase completed", file=sys.stderr)
        return 1
    text = report(phases, args, started, time.perf_counter() - t_start, idle_load, interrupted)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(summary(phases), allow_nan=False))
    failed = any(len(p.samples) == 0 or len(p.errors) >= MAX_ERRORS for p in phases)
    if args.write and (interrupted or failed):
        print(f"not writing {DOC.relative_to(ROOT)}: the run is incomplete", file=sys.stderr)
    elif args.write:
        write_doc(text)
        print(f"wrote {DOC.relative_to(ROOT)}", file=sys.stderr)
    return 130 if interrupted else 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
