"""Run `bench.stream_bench` several times and summarise the two targets over the runs.

    python -m bench.repeat                    # 9 runs with the default settings
    python -m bench.repeat -n 5 --write       # ... and put the summary in docs/benchmarks.md
    python -m bench.repeat -n 3 -- --no-store # options after `--` go to every stream_bench run

One run's ratio moves with the minute: a shared VM's speed drifts, and which gunicorn worker
each of the 16 keep-alive connections lands on changes per run. Each run here is a fresh
stream_bench process (its own servers and connections); the summary gives every run's numbers and
the median, range and count of runs meeting each target.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from bench._servers import ROOT
from bench._report import DOC, write_doc

BEGIN, END = "<!-- bench:repeat:begin -->", "<!-- bench:repeat:end -->"
TTFD_LIMIT_MS, SHARE_FLOOR_PCT = 2.0, 50.0


def run_once(extra: list[str], path: Path) -> dict:
    """One stream_bench run; its `--json` summary (progress and report go to our stderr)."""
    done = subprocess.run([sys.executable, "-m", "bench.stream_bench", "--json", str(path), *extra], cwd=ROOT,
                          stdout=subprocess.DEVNULL, stderr=sys.stderr, check=False)
    if done.returncode != 0 or not path.exists():
        raise RuntimeError(f"stream_bench exited with {done.returncode}")
    return json.loads(path.read_text())


def _spread(values: list[float], unit: str, fmt: str) -> str:
    return (f"{statistics.median(values):{fmt}}{unit} (range {min(values):{fmt}} to {max(values):{fmt}}{unit})"
            if values else "–")


def summarise(runs: list[dict], started: datetime) -> str:
    ttfd = [r["added_ttfd_ms"] for r in runs if r.get("added_ttfd_ms") is not None]
    share = [r["share_pct"] for r in runs if r.get("share_pct") is not None]
    lines = [f"- {len(runs)} runs of `python -m bench.stream_bench` from {started:%Y-%m-%d %H:%M} UTC, "
             f"gateway code `{runs[0]['revision'] if runs else 'unknown'}`.", "",
             "| run | added TTFD p50 at c=1 | c=16 share of direct req/s |", "|---:|---:|---:|"]
    for i, r in enumerate(runs, 1):
        added, pct = r.get("added_ttfd_ms"), r.get("share_pct")
        lines.append(f"| {i} | {'–' if added is None else f'{added:+.2f} ms'} | {'–' if pct is None else f'{pct:.1f} %'} |")
    lines += ["",
              f"- Target 1 (≤ {TTFD_LIMIT_MS:g} ms added): median {_spread(ttfd, ' ms', '+.2f')}; "
              f"met in {sum(v <= TTFD_LIMIT_MS for v in ttfd)} of {len(ttfd)} runs.",
              f"- Target 2 (≥ {SHARE_FLOOR_PCT:g} %): median {_spread(share, ' %', '.1f')}; "
              f"met in {sum(v >= SHARE_FLOOR_PCT for v in share)} of {len(share)} runs."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.repeat", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--runs", type=int, default=9, help="stream_bench runs (9)")
    parser.add_argument("--write", action="store_true", help=f"rewrite the repeated-runs section of {DOC.name}")
    parser.add_argument("extra", nargs="*", help="options for every stream_bench run (after `--`)")
    args = parser.parse_args(argv)
    if args.runs < 1 or "--write" in args.extra or "--json" in args.extra:
        parser.error("-n must be ≥ 1; --write/--json belong to this command, not to the runs")
    started, runs = datetime.now(timezone.utc), []
    with tempfile.TemporaryDirectory(prefix="gateway-repeat-") as tmp:
        for i in range(args.runs):
            try:
                runs.append(run_once(args.extra, Path(tmp) / f"run{i}.json"))
            except (RuntimeError, OSError, ValueError) as exc:
                print(f"run {i + 1} failed: {exc}", file=sys.stderr)
                return 1
            last = runs[-1]
            print(f"run {i + 1}/{args.runs}: added TTFD {last.get('added_ttfd_ms')}, share {last.get('share_pct')}",
                  file=sys.stderr)
    text = summarise(runs, started)
    print(text)
    if args.write:
        write_doc(text, BEGIN, END)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
