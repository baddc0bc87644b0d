"""The benchmark scripts run end to end (tiny request counts, fake upstream only: this checks that
they work and report, not the numbers; the real-vLLM part runs in `make bench`)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bench._report import MEASURES
from tests.support import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
TINY = ["--no-vllm", "--requests-c1", "4", "--requests-c16", "16", "--warmup", "1", "--rounds", "1",
        "--max-seconds", "120"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=280)


def test_stream_bench_reports_every_path_side_by_side_and_writes_the_target_numbers(tmp_path):
    out = tmp_path / "summary.json"
    done = run("bench.stream_bench", *TINY, "--json", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "**Side by side**" in done.stdout and "**Targets**" in done.stdout
    assert "the proxy path's own share over it" in done.stdout
    summary = json.loads(out.read_text())
    assert all(isinstance(summary[goal.key], float) for goal in MEASURES)
    keys = {(*p["key"], p["concurrency"]) for p in summary["phases"]}
    assert keys == {("fake", kind, path, client, c) for kind, path in (("chat", "direct"), ("chat", "gateway"),
                                                                     ("responses", "direct"), ("responses", "gateway"),
                                                                     ("responses", "proxy"), ("responses", "floor"))
                    for client in ("kept-alive", "new connection") for c in (1, 16)}
    assert all(p["done"] > 0 for p in summary["phases"])


def test_repeat_summarises_fresh_runs():
    done = run("bench.repeat", "-n", "1", "--", *TINY)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| 1 |" in done.stdout
    assert "at the median; met in" in done.stdout and "of 1 runs" in done.stdout


@pytest.mark.parametrize("kind", ["chat", "responses"])
def test_the_demo_runs_with_either_upstream_kind(kind):
    done = subprocess.run([sys.executable, "-m", "bench.demo"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "UPSTREAM_API": kind})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"UPSTREAM_API={kind}" in done.stdout and "demo OK" in done.stdout
