"""Run `bench.stream_bench` several times and summarise every target over the runs.

    python -m bench.repeat                    # 9 runs with the default settings
    python -m bench.repeat -n 5 --write       # ... and put the summary in docs/benchmarks.md
    python -m bench.repeat -n 3 -- --no-vllm  # options after `--` go to every stream_bench run

One run's numbers move with the minute: a shared VM's speed drifts, and which gunicorn worker
each of the 16 keep-alive connections lands on changes per run. Each run here is a fresh
stream_bench process (its own servers and connections); a target is judged on the median.
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

from bench._report import DOC, MEASURES, Goal, write_doc
from bench._servers import ROOT

BEGIN, END = "<!-- bench:repeat:begin -->", "<!-- bench:repeat:end -->"


def run_once(extra: list[str], path: Path) -> dict:
    """One stream_bench run; its `--json` summary (progress and report go to our stderr)."""
    done = subprocess.run([sys.executable, "-m", "bench.stream_bench", "--json", str(path), *extra], cwd=ROOT,
                          stdout=subprocess.DEVNULL, stderr=sys.stderr, check=False)
    if done.returncode != 0 or not path.exists():
        raise RuntimeError(f"stream_bench exited with {done.returncode}")
    return json.loads(path.read_text())


def _shown(goal: Goal, value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:+.2f} ms" if goal.measure == "ttfd" else f"{value:.1f} %"


def summarise(runs: list[dict], started: datetime) -> str:
    lines = [f"- {len(runs)} runs of `python -m bench.stream_bench` from {started:%Y-%m-%d %H:%M} UTC, "
             f"gateway code `{runs[0]['revision'] if runs else 'unknown'}`.", "",
             "| run | " + " | ".join(goal.label for goal in MEASURES) + " |",
             "|---:|" + "---:|" * len(MEASURES)]
    for i, run in enumerate(runs, 1):
        lines.append(f"| {i} | " + " | ".join(_shown(goal, run.get(goal.key)) for goal in MEASURES) + " |")
    lines.append("")
    for goal in MEASURES:
        values = [run[goal.key] for run in runs if run.get(goal.key) is not None]
        if not values:
            lines.append(f"- {goal.label} ({goal.rule}): not measured.")
            continue
        median = statistics.median(values)
        spread = f"median {_shown(goal, median)} (range {_shown(goal, min(values))} to {_shown(goal, max(values))})"
        if goal.limit is None:
            lines.append(f"- {goal.label} ({goal.rule}): {spread}.")
            continue
        lines.append(f"- {goal.label} ({goal.rule}): {spread}, {'**met**' if goal.met(median) else '**missed**'} at "
                     f"the median; met in {sum(goal.met(v) for v in values)} of {len(values)} runs.")
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
            print(f"run {i + 1}/{args.runs}: " + ", ".join(f"{goal.key} {runs[-1].get(goal.key)}" for goal in MEASURES),
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
