"""Fixtures for the end-to-end tests that drive the real Codex CLI."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import ROOT

CODEX_VERSION = "0.169.0"
CODEX_DIR = ROOT / ".cache" / "codex"  # git-ignored


def _npm(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["npm", *args], cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=600)


def _version_ok(binary: Path) -> bool:
    try:
        out = subprocess.run([str(binary), "--version"], stdin=subprocess.DEVNULL, capture_output=True,
                             text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and CODEX_VERSION in out.stdout


@pytest.fixture(scope="session")
def codex_bin() -> Path:
    """The Codex CLI: `$CODEX_BIN`, else the pinned npm install under `.cache/codex` (installed on demand)."""
    if os.environ.get("CODEX_BIN"):
        binary = Path(os.environ["CODEX_BIN"])
        if not binary.exists():
            pytest.fail(f"CODEX_BIN={binary} does not exist")
        return binary
    binary = CODEX_DIR / "node_modules" / ".bin" / "codex"
    if binary.exists() and _version_ok(binary):
        return binary
    if shutil.which("npm") is None:
        pytest.skip(f"npm is not installed: cannot install @openai/codex@{CODEX_VERSION} into {CODEX_DIR} "
                    f"(install Node.js/npm or set CODEX_BIN)")
    CODEX_DIR.mkdir(parents=True, exist_ok=True)
    steps = []
    if not (CODEX_DIR / "package.json").exists():
        steps.append(["init", "-y"])
    steps.append(["install", "--no-audit", "--no-fund", f"@openai/codex@{CODEX_VERSION}"])
    for step in steps:
        try:
            result = _npm(step, CODEX_DIR)
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"`npm {' '.join(step)}` in {CODEX_DIR} timed out:\n{exc.output or ''}")
        if result.returncode != 0:
            pytest.fail(f"`npm {' '.join(step)}` in {CODEX_DIR} failed (exit {result.returncode}):\n"
                        f"{result.stdout}")
    if not binary.exists() or not _version_ok(binary):
        pytest.fail(f"npm installed @openai/codex@{CODEX_VERSION}, but {binary} does not run "
                    f"or is not version {CODEX_VERSION}")
    return binary
