"""The reporting half of `bench.stream_bench`: the Markdown report, the target numbers (also as
JSON), and the Results section of docs/benchmarks.md."""
from __future__ import annotations

import math
import os
import platform
import re
import subprocess
from dataclasses import dataclass
from datetime import datetime

from bench._measure import BenchError, Phase
from bench._servers import ROOT

DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"


@dataclass(frozen=True)
class Goal:
    key: str               # the number's name in the JSON summary
    label: str
    kind: str              # upstream kind of the gateway path
    path: str              # gateway | proxy
    concurrency: int
    measure: str           # "ttfd": added p50 TTFD in ms; "share": % of direct req/s
    limit: float | None    # None: a reference figure, reported without a verdict

    def met(self, value: float) -> bool:
        if self.limit is None:
            return True
        return value <= self.limit if self.measure == "ttfd" else value >= self.limit

    @property
    def rule(self) -> str:
        if self.limit is None:
            return "reference, not a target"
        return f"≤ {self.limit:g} ms added" if self.measure == "ttfd" else f"≥ {self.limit:g} % of direct req/s"


# All against the fake upstream with kept-alive clients (docs/benchmarks.md, "Targets").
GOALS = (
    Goal("chat_added_ttfd_ms", "chat kind: added p50 TTFD at c=1", "chat", "gateway", 1, "ttfd", 2.0),
    Goal("chat_share_pct", "chat kind: req/s at c=16", "chat", "gateway", 16, "share", 50.0),
    Goal("responses_added_ttfd_ms", "responses kind, stateful: added p50 TTFD at c=1", "responses", "gateway", 1,
         "ttfd", 2.0),
    Goal("responses_share_pct", "responses kind, stateful: req/s at c=16", "responses", "gateway", 16, "share", 50.0),
    Goal("proxy_added_ttfd_ms", "responses kind, proxy path: added p50 TTFD at c=1", "responses", "proxy", 1,
         "ttfd", 1.0),
)
# What gunicorn + Flask + requests add by themselves when they only pass the bytes through
# (bench/floor_app.py under the same gunicorn.conf.py): the part of the proxy path's added time that
# is not the gateway's own work.
FLOOR = Goal("floor_added_ttfd_ms", "stack floor (bytes passed through): added p50 TTFD at c=1", "responses",
             "floor", 1, "ttfd", None)
MEASURES = (*GOALS, FLOOR)


def _ms(x: float) -> str:
    return "–" if math.isnan(x) else f"{x * 1000:.2f}"


def _other_load(p: Phase) -> str:
    """CPUs used during the phase by processes outside the benchmark, and stolen by the hypervisor:
    the noise indicators of a shared machine."""
    if "machine" not in p.cpu or not p.elapsed:
        return "–"
    ours = sum(value for key, value in p.cpu.items() if key not in ("machine", "steal", "ListenOverflows",
                                                                      "TCPSynRetrans"))
    return f"{max(0.0, p.cpu['machine'] - ours) / p.elapsed:.2f} · {p.cpu.get('steal', 0.0) / p.elapsed:.2f}"


def _by_key(phases: list[Phase]) -> dict[tuple, Phase]:
    return {(*p.target.key, p.concurrency): p for p in phases if p.samples}


def compare(phases: list[Phase], upstream: str, kind: str, path: str, client: str,
            concurrency: int) -> tuple[float | None, float | None]:
    """(added p50 TTFD in ms, % of direct req/s) of a gateway path against its direct twin."""
    by = _by_key(phases)
    gateway = by.get((upstream, kind, path, client, concurrency))
    direct = by.get((upstream, kind, "direct", client, concurrency))
    if gateway is None or direct is None:
        return None, None
    added = (gateway.pct("ttfd", .5) - direct.pct("ttfd", .5)) * 1000
    return added, (100 * gateway.rps / direct.rps if direct.rps else None)


def goal_results(phases: list[Phase]) -> dict[str, float | None]:
    results: dict[str, float | None] = {}
    for goal in MEASURES:
        added, share = compare(phases, "fake", goal.kind, goal.path, "kept-alive", goal.concurrency)
        results[goal.key] = added if goal.measure == "ttfd" else share
    return results


def report(phases: list[Phase], settings: str, started: datetime, total_s: float, idle_load: float | None,
           interrupted: bool = False) -> str:
    lines = [
        *(["- **Interrupted**: partial results, not comparable with complete runs."] if interrupted else []),
        f"- Run: {started:%Y-%m-%d %H:%M} UTC, gateway code `{_revision()}`, {total_s:.0f} s wall clock.",
        f"- {settings}",
        f"- Machine: {os.cpu_count()} CPUs ({_cpu_model()}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; clients, gateways and upstreams share these CPUs over loopback. "
        f"Other processes' load just before the run: {'unknown' if idle_load is None else f'{idle_load:.2f} CPUs'}.",
        "", "**Side by side** (each gateway path against the same upstream called directly):", "",
        "| upstream | kind | path | client | conc. | added TTFD p50 ms | req/s vs direct |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    for p in phases:
        upstream, kind, path, client = p.target.key
        if path == "direct":
            continue
        added, share = compare(phases, upstream, kind, path, client, p.concurrency)
        lines.append(f"| {upstream} | {kind} | {path} | {client} | {p.concurrency} "
                     f"| {'–' if added is None else f'{added:+.2f}'} | {'–' if share is None else f'{share:.0f} %'} |")
    lines += ["", "**Targets**:", ""]
    results = goal_results(phases)
    for goal in GOALS:
        value = results[goal.key]
        shown = "–" if value is None else f"{value:+.2f} ms" if goal.measure == "ttfd" else f"{value:.0f} %"
        verdict = "not measured" if value is None else "**met**" if goal.met(value) else "**missed**"
        lines.append(f"- {goal.label} (kept-alive, fake upstream): **{shown}** (target {goal.rule}: {verdict}).")
    floor, proxy = results[FLOOR.key], results["proxy_added_ttfd_ms"]
    if floor is not None and proxy is not None:
        lines.append(f"- For reference, the {FLOOR.label}: **{floor:+.2f} ms**; the proxy path's own share over "
                     f"it: {proxy - floor:+.2f} ms.")
    lines += ["", "**Every phase**:", "",
              "| upstream | kind | path | client | conc. | done / planned | errors | TTFD p50 ms | TTFD p99 ms "
              "| stream p50 ms | req/s | gateway CPU ms/req | other load · steal (CPUs) |",
              "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for p in phases:
        n = max(len(p.samples), 1)
        cpu = f"{p.cpu[p.target.gateway] * 1000 / n:.2f}" if p.target.gateway in p.cpu else "–"
        lines.append(f"| {' | '.join(p.target.key)} | {p.concurrency} | {len(p.samples)} / {p.planned}"
                     f"{' (capped)' if p.capped else ''} | {len(p.errors)} | {_ms(p.pct('ttfd', .5))} "
                     f"| {_ms(p.pct('ttfd', .99))} | {_ms(p.pct('total', .5))} | {p.rps:.0f} | {cpu} "
                     f"| {_other_load(p)} |")
    for p in phases:
        drops, retrans = int(p.cpu.get("ListenOverflows", 0)), int(p.cpu.get("TCPSynRetrans", 0))
        if drops or retrans:
            lines.append(f"- {p.path} c={p.concurrency}: {drops} TCP listen-queue overflows and {retrans} SYN "
                         f"retransmits during this phase (each retransmit costs its connection ~1 s).")
    for p in phases:
        if p.errors:
            lines.append(f"- {p.path} c={p.concurrency}: {len(p.errors)} errors, first: `{p.errors[0]}`")
    return "\n".join(lines) + "\n"


def summary(phases: list[Phase]) -> dict:
    """What `--json` writes: the target numbers and each phase's main figures."""
    return {"revision": _revision(), **goal_results(phases),
            "phases": [{"key": list(p.target.key), "concurrency": p.concurrency, "done": len(p.samples),
                        "errors": len(p.errors), "rps": p.rps,
                        "ttfd_p50_ms": None if not p.samples else p.pct("ttfd", .5) * 1000}
                       for p in phases]}


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", "--no-optional-locks", *args], cwd=ROOT, capture_output=True, text=True,
                             timeout=10)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def _revision() -> str:
    """The commit measured (read-only git: no index refresh, no locks); the results document itself
    does not count as a change."""
    rev = _git("rev-parse", "--short", "HEAD") or "unknown"
    changed = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs/benchmarks.md")
    return rev + (" + uncommitted changes" if changed else "")  # this document is rewritten by the runs


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
