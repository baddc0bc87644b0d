"""The benchmark scripts of issue 2 run end to end (tiny request counts: this checks that they
work and report, not the numbers)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.integration
TINY = ["--requests-c1", "4", "--requests-c16", "16", "--warmup", "1", "--rounds", "1", "--max-seconds", "60"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=180)


def test_stream_bench_reports_both_paths_and_writes_the_target_numbers(tmp_path):
    out = tmp_path / "summary.json"
    done = run("bench.stream_bench", *TINY, "--json", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith(("| direct |", "| gateway |"))]
    assert len(rows) == 4
    assert "Gateway added p50 TTFD at concurrency 1" in done.stdout
    summary = json.loads(out.read_text())
    assert isinstance(summary["added_ttfd_ms"], float) and summary["share_pct"] > 0
    assert {(p["path"], p["concurrency"]) for p in summary["phases"]} == {
        ("direct", 1), ("gateway", 1), ("direct", 16), ("gateway", 16)}
    assert all(p["done"] > 0 and p["errors"] == 0 for p in summary["phases"])


def test_repeat_summarises_fresh_runs():
    done = run("bench.repeat", "-n", "1", "--", *TINY)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| 1 |" in done.stdout
    assert "met in" in done.stdout and "of 1 runs" in done.stdout
