"""Running the real Codex CLI (`codex exec --json`) against a gateway, for the e2e tests here and
the real-vLLM tier: a fresh `CODEX_HOME` with a provider pointing at the gateway (HTTP/SSE or
WebSocket), a fresh working directory, stdin from /dev/null and a hard timeout
(shared/reference/codex-cli.md §10)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, GunicornGateway

API_KEY = "sk-test"
CODEX_TIMEOUT_S = 120
MCP_SERVER = Path(__file__).with_name("mcp_echo_server.py")
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
TRANSPORTS = ("http", "websocket")
WS_FALLBACK = "Falling back from WebSockets to HTTPS transport"

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


@dataclass
class CodexRun:
    returncode: int | None
    stdout: str
    stderr: str
    elapsed_s: float
    workdir: Path
    mcp_log: Path
    timed_out: bool = False
    transport: str = "http"
    gateway_log: str = ""  # what the gateway logged while this run was going on
    events: list[dict[str, Any]] = field(default_factory=list)
    bad_lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for line in self.stdout.splitlines():
            if not line.strip():
                continue
            try:
                self.events.append(json.loads(line))
            except ValueError:
                self.bad_lines.append(line)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]

    def items(self, item_type: str) -> list[dict[str, Any]]:
        """Completed items of one type (`command_execution`, `mcp_tool_call`, …)."""
        return [e["item"] for e in self.of_type("item.completed") if e.get("item", {}).get("type") == item_type]


class Codex:
    """One Codex configuration (its own CODEX_HOME); `exec` runs one non-interactive turn."""

    def __init__(self, binary: Path, gateway: GunicornGateway, tmp_path: Path, transport: str = "http", *,
                 model: str, mcp: bool = True, timeout_s: float = CODEX_TIMEOUT_S, builtin_provider: bool = False,
                 extra_config: str = "") -> None:
        assert transport in TRANSPORTS, transport
        self.binary, self.gateway, self.tmp_path, self.transport = binary, gateway, tmp_path, transport
        self.timeout_s = timeout_s
        self.home = tmp_path / "codex_home"
        self.workdir = tmp_path / "work"
        self.mcp_log = tmp_path / "mcp_echo.log"
        self.home.mkdir()
        self.workdir.mkdir()
        python = VENV_PYTHON if VENV_PYTHON.exists() else Path(sys.executable)
        url = gateway.url
        # The built-in OpenAI provider pointed at the gateway (`openai_base_url`) is what Codex's
        # remote compaction needs; a custom provider is how most users configure it.
        config = f"""\
model = "{model}"
{extra_config}
"""
        if builtin_provider:
            config += f'openai_base_url = "{url}/v1"\n'
        else:
            config += f"""\
model_provider = "gateway"

[model_providers.gateway]
name = "Responses gateway under test"
base_url = "{url}/v1"
wire_api = "responses"
env_key = "GATEWAY_API_KEY"
supports_websockets = {"true" if transport == "websocket" else "false"}
model_catalog_url = "{url}/v1/models"
request_max_retries = 1
stream_max_retries = 1
"""
        if mcp:
            config += f"""
[mcp_servers.echo]
command = {json.dumps(str(python))}
args = [{json.dumps(str(MCP_SERVER))}]
env = {{ MCP_ECHO_LOG = {json.dumps(str(self.mcp_log))} }}
"""
        (self.home / "config.toml").write_text(config)

    def exec(self, prompt: str) -> CodexRun:
        env = {**os.environ, "CODEX_HOME": str(self.home), "GATEWAY_API_KEY": API_KEY, "OPENAI_API_KEY": API_KEY}
        cmd = [str(self.binary), "exec", "--json", "--skip-git-repo-check",
               "--dangerously-bypass-approvals-and-sandbox", prompt]
        log_offset = self.gateway.log_path.stat().st_size
        started = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=self.workdir, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)  # its own process group: MCP server included
        timed_out = False
        try:
            stdout, stderr = proc.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            stdout, stderr = proc.communicate()
        elapsed = time.monotonic() - started
        time.sleep(0.3)  # let gunicorn write the access-log line of a request that just ended
        with open(self.gateway.log_path, "rb") as log:
            log.seek(log_offset)
            gateway_log = log.read().decode(errors="replace")
        return CodexRun(proc.returncode, stdout, stderr, elapsed, self.workdir, self.mcp_log, timed_out,
                        self.transport, gateway_log)


def responses_posts(gateway_log: str) -> int:
    """`POST /v1/responses` lines of gunicorn's access log (upgraded WebSocket GETs are not logged)."""
    return sum(1 for line in gateway_log.splitlines() if '"POST /v1/responses ' in line)
