"""Shared fixtures: the loopback fake upstream and the gateway under real servers."""
from __future__ import annotations

import pytest

from app import create_app
from gateway.config import Settings
from tests.fakes.upstream import FakeUpstream
from tests.jsonrpc_host import StdioHost, WebSocketHost
from tests.support import GunicornGateway, ThreadedGateway


@pytest.fixture(scope="session")
def fake_upstream():
    with FakeUpstream(models=("fake-model", "other-model")) as fake:
        yield fake


@pytest.fixture
def upstream(fake_upstream):
    """The fake upstream, with an empty script queue and request log for this test."""
    fake_upstream.reset()
    yield fake_upstream
    fake_upstream.reset()


@pytest.fixture(scope="session")
def gunicorn_gateway(fake_upstream, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gateway")
    server = GunicornGateway.for_upstream(fake_upstream.base_url, tmp, UPSTREAM_TIMEOUT_S="2,2",
                                          MODEL_ALIASES="alias-model=fake-model", GATEWAY_THREADS="32")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def gateway(gunicorn_gateway, upstream):
    """Base URL of the gateway (gunicorn) wired to a freshly reset fake upstream."""
    return gunicorn_gateway.url


@pytest.fixture
def make_gateway(tmp_path):
    """Start a gateway with custom Settings under a threaded WSGI server; stopped after the test."""
    started: list[ThreadedGateway] = []

    def start(**overrides) -> str:
        overrides.setdefault("skip_llm_ready_check", True)
        overrides.setdefault("database_url", f"sqlite:///{tmp_path / 'gw.db'}")
        server = ThreadedGateway(create_app(Settings(**overrides))).start()
        started.append(server)
        return server.url

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def gunicorn_factory(fake_upstream, tmp_path):
    """Start gunicorn gateways (shipped gunicorn.conf.py, the fake upstream, one SQLite file per test)
    with extra environment; all stopped after the test."""
    started: list[GunicornGateway] = []

    def start(**env: str) -> GunicornGateway:
        server = GunicornGateway.for_upstream(fake_upstream.base_url, tmp_path, **{"UPSTREAM_TIMEOUT_S": "5,30", **env})
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(params=["stdio", "websocket"])
def open_rpc_host(request, gunicorn_gateway, gunicorn_factory, upstream, tmp_path):
    """Opens hosts on this test's transport (`key`: the WebSocket handshake's), with extra settings
    if asked (then with a gateway and database of their own); each is closed, and everything it
    read checked, afterwards. A host's `http_url` is a gateway on the same database."""
    hosts = []

    def open_(key: str | None = None, **env: str):
        server = gunicorn_factory(**env) if env else gunicorn_gateway
        if request.param == "stdio":
            host = StdioHost({**server.env, "LOG_LEVEL": "DEBUG"}, tmp_path / f"stdio{len(hosts)}.log")
        else:
            host = WebSocketHost(server.url, headers={"Authorization": f"Bearer {key}"} if key else None)
        host.http_url = server.url
        hosts.append(host)
        return host

    yield open_
    for host in hosts:
        host.stop()
        assert not host.problems, host.problems


@pytest.fixture
def rpc_host(open_rpc_host):
    """A simulated agent host on this test's JSON-RPC transport (stdio or WebSocket)."""
    return open_rpc_host()
