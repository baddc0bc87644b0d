"""`_UpstreamAdapter`: what requests resolves per URL is resolved once, and stays exact per
URL, TLS and proxy settings."""
from __future__ import annotations

import pytest
import requests
from requests.adapters import HTTPAdapter

from gateway.upstream import _MAX_CACHED_URLS, _UpstreamAdapter

URL = "http://upstream.example:8000/v1/chat/completions"
PROXY = {"http": "http://proxy.example:3128"}


def prepared(url: str = URL) -> requests.PreparedRequest:
    request = requests.PreparedRequest()
    request.prepare(method="POST", url=url, data=b"{}")
    return request


@pytest.fixture
def resolutions(monkeypatch):
    calls = []
    for name in ("request_url", "get_connection_with_tls_context"):
        real = getattr(HTTPAdapter, name)
        monkeypatch.setattr(HTTPAdapter, name, lambda self, *a, _real=real, _name=name, **k:
                            calls.append(_name) or _real(self, *a, **k))
    return calls


def test_the_request_target_is_resolved_once_per_url_and_proxies(resolutions):
    adapter = _UpstreamAdapter()
    assert [adapter.request_url(prepared(), {}) for _ in range(3)] == ["/v1/chat/completions"] * 3
    assert [adapter.request_url(prepared(), PROXY) for _ in range(3)] == [URL] * 3  # an HTTP proxy wants the URL
    assert resolutions == ["request_url", "request_url"]


def test_the_pool_is_resolved_once_per_url_tls_and_proxies(resolutions):
    adapter = _UpstreamAdapter()
    first = adapter.get_connection_with_tls_context(prepared(), True, {}, None)
    assert adapter.get_connection_with_tls_context(prepared(), True, {}, None) is first
    proxied = adapter.get_connection_with_tls_context(prepared(), True, PROXY, None)
    assert proxied is not first
    assert resolutions.count("get_connection_with_tls_context") == 2


def test_only_a_bounded_number_of_urls_is_remembered(resolutions):
    adapter = _UpstreamAdapter()
    for n in range(_MAX_CACHED_URLS + 5):
        adapter.request_url(prepared(f"http://upstream.example:8000/{n}"), {})
    assert len(adapter._targets) == _MAX_CACHED_URLS
    assert adapter.request_url(prepared("http://upstream.example:8000/extra"), {}) == "/extra"


def test_closing_forgets_everything_resolved(resolutions):
    adapter = _UpstreamAdapter()
    adapter.request_url(prepared(), {})
    adapter.get_connection_with_tls_context(prepared(), True, {}, None)
    adapter.close()
    adapter.request_url(prepared(), {})
    assert resolutions.count("request_url") == 2
