"""Servers and stream readers shared by the integration tests."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import requests
from sseclient import SSEClient
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def wait_for(condition, timeout_s: float = 20.0, interval_s: float = 0.05):
    """Poll `condition` until it returns a truthy value (returned), failing after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(interval_s)


class GunicornGateway:
    """The gateway as users run it: gunicorn with the shipped gunicorn.conf.py."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {**os.environ, "GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": str(self.port),
                    "SKIP_LLM_READY_CHECK": "1", "LOG_LEVEL": "WARNING", **env}
        self.proc: subprocess.Popen | None = None

    @classmethod
    def for_upstream(cls, upstream_url: str, tmp: Path, **env: str) -> "GunicornGateway":
        """The usual test gateway: this upstream, one worker, a SQLite file and the log in `tmp`."""
        defaults = {"LLM_API_BASE": upstream_url, "DATABASE_URL": f"sqlite:///{tmp / 'gateway.db'}",
                    "GATEWAY_WORKERS": "1"}
        return cls({**defaults, **env}, tmp / "gunicorn.log")

    def launch(self) -> "GunicornGateway":
        """Start gunicorn without waiting for it to answer."""
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"],
                                     cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        return self

    def start(self) -> "GunicornGateway":
        self.launch()
        wait_http(f"{self.url}/health", proc=self.proc)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


class ThreadedGateway:
    """A gateway app (any Settings) under werkzeug's threaded WSGI server, in this process."""

    def __init__(self, app) -> None:
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "ThreadedGateway":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.app.extensions["gateway"].close()


def _byte_chunks(resp: requests.Response) -> Iterator[bytes]:
    while True:
        chunk = resp.raw.read1(65536)
        if not chunk:
            return
        yield chunk


def iter_sse(resp: requests.Response) -> Iterator[dict[str, Any]]:
    """Parsed events as they arrive; also checks the `event:` line matches the JSON `type`."""
    for event in SSEClient(_byte_chunks(resp)).events():
        assert event.data != "[DONE]", "Responses streams never send [DONE]"
        payload = json.loads(event.data)
        assert event.event == payload["type"], f"event line {event.event!r} != type {payload['type']!r}"
        yield payload


def post_stream(url: str, body: dict[str, Any], **kwargs: Any) -> tuple[requests.Response, list[dict[str, Any]]]:
    resp = requests.post(f"{url}/v1/responses", json={**body, "stream": True}, stream=True, timeout=30, **kwargs)
    events = list(iter_sse(resp)) if resp.status_code == 200 else []
    return resp, events
