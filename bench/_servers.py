"""Subprocess helpers shared by `bench.demo` and `bench.stream_bench`.

Both servers bind 127.0.0.1 only. Every process started here is stopped by its own pid
(`Server.stop`), and `stop_on_sigterm()` turns SIGTERM into SystemExit so `finally:` blocks
that stop the servers also run when the script is terminated rather than interrupted.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support import free_port

ROOT = Path(__file__).resolve().parent.parent

# Environment the gateway reads: every upper-case string literal of gateway/config.py and
# gunicorn.conf.py (so settings added later are covered too), gunicorn's own GUNICORN_CMD_ARGS and
# the GATEWAY_/LLM_ families. Cleared from the inherited environment, so a stray export cannot
# change what is measured or demoed.
_GATEWAY_ENV_PREFIXES = ("GATEWAY_", "LLM_")


def _gateway_env_names() -> set[str]:
    names = {"GUNICORN_CMD_ARGS"}
    for source in ("gateway/config.py", "gunicorn.conf.py"):
        try:
            names |= set(re.findall(r"[\"']([A-Z][A-Z0-9]*_[A-Z0-9_]+)[\"']", (ROOT / source).read_text()))
        except OSError:
            pass
    return names


_PROBE = requests.Session()
_PROBE.trust_env = False  # loopback probes never go through a proxy


def clean_env(**overrides: str) -> dict[str, str]:
    names = _gateway_env_names()
    env = {k: v for k, v in os.environ.items() if k not in names and not k.startswith(_GATEWAY_ENV_PREFIXES)}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(overrides)
    return env


class Server:
    """One subprocess with its log file; `stop()` is idempotent and only signals its own pid."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name, self.log_path = name, log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [a.replace("{port}", str(self.port)) for a in argv]
        env = {k: v.replace("{port}", str(self.port)) for k, v in env.items()}
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_until(self, path: str, timeout: float, want: int = 200) -> None:
        """Poll `path` until it answers `want`; fail early (with the log) if the process died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with _PROBE.get(self.url + path, timeout=2) as resp:
                    if resp.status_code == want:
                        return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        state = f"exited with code {self.proc.returncode}" if self.proc.poll() is not None else "still running"
        raise RuntimeError(f"{self.name} ({state}): {self.url}{path} did not answer {want} within "
                           f"{timeout:.0f}s\n--- {self.log_path} ---\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """SIGTERM (gunicorn: graceful), then SIGINT (gunicorn: quick), then SIGKILL — this pid only."""
        if self.proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGINT, 5), (signal.SIGKILL, 5)):
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue


def start_fake(tmp: Path, model: str, tokens: int | None = None, delay_ms: float | None = None) -> Server:
    argv = [sys.executable, "-m", "tests.fakes.upstream", "--host", "127.0.0.1", "--port", "{port}",
            "--model", model]
    if tokens is not None:
        argv += ["--tokens", str(tokens)]
    if delay_ms is not None:
        argv += ["--delay-ms", str(delay_ms)]
    server = Server("fake upstream", argv, clean_env(PYTHONUNBUFFERED="1"), tmp / "fake-upstream.log")
    try:
        server.wait_until("/health", timeout=20)
    except BaseException:
        server.stop()
        raise
    return server


def start_gateway(tmp: Path, upstream_url: str, extra_env: dict[str, str], ready_path: str,
                  timeout: float = 60, app: str = "app:create_app()") -> Server:
    """gunicorn with the shipped gunicorn.conf.py, exactly as `make run` starts it (`app`: another
    WSGI app under the same settings, such as bench/floor_app.py)."""
    env = clean_env(**{"LLM_API_BASE": upstream_url, "GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": "{port}",
                       "DATABASE_URL": f"sqlite:///{tmp / 'gateway.db'}", **extra_env})
    argv = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", app]
    server = Server("gateway", argv, env, tmp / "gateway.log")
    try:
        server.wait_until(ready_path, timeout=timeout)
    except BaseException:
        server.stop()
        raise
    return server


def stop_all(*servers: Server | None) -> None:
    """Stop in reverse start order. SIGINT/SIGTERM are held back until every server is stopped
    (a second Ctrl-C must not abandon a half-stopped server); one failing stop does not skip the rest."""
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        for server in reversed([s for s in servers if s is not None]):
            try:
                server.stop()
            except Exception as exc:  # noqa: BLE001 - report, then stop the others
                print(f"warning: could not stop {server.name} (pid {server.pid}): {exc}", file=sys.stderr)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)  # a held signal is delivered now


def stop_on_sigterm() -> None:
    """SIGTERM → SystemExit(143), so `finally:` clauses stop the servers."""
    def _raise(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, _raise)
