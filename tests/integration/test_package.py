"""The package: `pip install .` into a fresh virtualenv gives a `responses-gateway` command whose
`serve` runs the gateway from anywhere (not from this checkout), and whose `purge` reports its
progress."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest
import requests

from gateway import __version__
from tests.support import ROOT, free_port, wait_http

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """`pip install .` of a copy of this checkout (setuptools builds inside the tree it is given)
    into a new virtualenv; its `responses-gateway` command."""
    source = tmp_path_factory.mktemp("source") / "responses-gateway"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", ".cache", "build", "*.egg-info",
                                                                "__pycache__", "*.db"))
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    result = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                             str(source)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return venv / "bin" / "responses-gateway"


def test_the_installed_command_knows_its_version(installed):
    shown = subprocess.run([str(installed), "--version"], capture_output=True, text=True, timeout=60)
    assert shown.stdout.strip() == f"responses-gateway {__version__}"


def test_serve_runs_the_gateway_outside_the_checkout(installed, fake_upstream, upstream, tmp_path):
    port = free_port()
    env = {**os.environ, "GATEWAY_PORT": str(port), "LLM_API_BASE": fake_upstream.base_url,
           "DATABASE_URL": f"sqlite:///{tmp_path / 'gateway.db'}", "SKIP_LLM_READY_CHECK": "1",
           "GATEWAY_WORKERS": "1", "GATEWAY_THREADS": "8", "LOG_LEVEL": "WARNING"}
    with open(tmp_path / "serve.log", "wb") as log:
        proc = subprocess.Popen([str(installed), "serve"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_http(f"http://127.0.0.1:{port}/health", proc=proc)
            answer = requests.post(f"http://127.0.0.1:{port}/v1/responses", timeout=30,
                                   json={"model": "fake-model", "input": "hi from the package"})
            assert answer.status_code == 200 and answer.json()["status"] == "completed"
            for asset in ("/ui/", "/ui/static/viewer.js", "/ui/static/viewer.css"):    # installed with it
                assert requests.get(f"http://127.0.0.1:{port}{asset}", timeout=10).status_code == 200, asset
        finally:
            proc.terminate()
            assert proc.wait(30) == 0, (tmp_path / "serve.log").read_text()


def test_purge_reports_progress_and_what_it_purged(installed, tmp_path):
    database = tmp_path / "old.db"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}"}
    script = ("from storage.db import connect_database, db\nfrom storage.migrations import migrate\n"
              "from storage.repository import Repository\nfrom tests.storage.builders import make_turn\n"
              f"db.initialize(connect_database('sqlite:///{database}'))\nmigrate()\n"
              "for n in range(1200):\n"
              "    turn = make_turn(f'resp_{n}')\n    turn.response['created_at'] = 1000\n"
              "    Repository().save_response(turn)\n")
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=120)   # 1,200 old responses
    started = time.monotonic()
    shown = subprocess.run([str(installed), "purge", "--older-than", "1"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert sum("…" in line for line in lines) >= 3 and "1200 responses" in lines[-1], shown.stdout
    assert time.monotonic() - started < 60
