"""The shipped gunicorn.conf.py: settings from the environment and the worker hooks."""
from __future__ import annotations

import gc
import importlib.util
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

CONF = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"


def load_conf(monkeypatch, **env):
    # The conf points prometheus-client at a metrics directory; keep this process's own.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", tempfile.gettempdir())
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("gunicorn_conf_under_test", CONF)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_workers_listen_on_their_own_sockets_by_default(monkeypatch):
    monkeypatch.delenv("GATEWAY_REUSE_PORT", raising=False)
    assert load_conf(monkeypatch).reuse_port is True


def test_one_shared_socket_on_request(monkeypatch):
    assert load_conf(monkeypatch, GATEWAY_REUSE_PORT="0").reuse_port is False


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_worker_init_freezes_start_up_objects_out_of_the_collector(monkeypatch, unfrozen):
    conf = load_conf(monkeypatch)
    assert gc.get_freeze_count() == 0
    conf.post_worker_init(worker=SimpleNamespace(age=2))   # not the first: no readiness report
    assert gc.get_freeze_count() > 1000
