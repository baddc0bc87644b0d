"""The reporting half of `bench.stream_bench`: the Markdown report, the target numbers (also as
JSON), and the Results section of docs/benchmarks.md."""
from __future__ import annotations

import argparse
import math
import os
import platform
import re
import subprocess
from datetime import datetime

from bench._measure import BenchError, Phase
from bench._servers import ROOT

DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"


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


def write_doc(text: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace what stands between the `begin` and `end` markers of docs/benchmarks.md."""
    doc = DOC.read_text()
    if begin not in doc or end not in doc:
        raise BenchError(f"{DOC} has no {begin} … {end} section to rewrite")
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    DOC.write_text(f"{head}{begin}\n{text}{end}{tail}")
