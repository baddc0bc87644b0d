"""`GET /metrics` under gunicorn with several workers: every worker's counts, merged; request,
stream, upstream-error, storage and token metrics move when the gateway does that work."""
from __future__ import annotations

import re

import pytest
import requests

from tests.fakes import upstream as fake
from tests.integration.test_websocket import MODEL, Socket
from tests.support import GunicornGateway, post_stream, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def two_workers(fake_upstream, tmp_path_factory):
    server = GunicornGateway.for_upstream(fake_upstream.base_url, tmp_path_factory.mktemp("metrics"),
                                          GATEWAY_WORKERS="2", UPSTREAM_TIMEOUT_S="2,2").start()
    yield server
    server.stop()


def scrape(url: str, **kwargs) -> dict[str, float]:
    """Samples by their full name with labels, e.g. 'gateway_requests_total{method="GET",...}'."""
    text = requests.get(f"{url}/metrics", timeout=10, **kwargs).text
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def sample(samples: dict[str, float], name: str, **labels: str) -> float:
    """The sum of `name` over the samples whose labels include `labels`."""
    total = 0.0
    for key, value in samples.items():
        base, _, rest = key.partition("{")
        found = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if base == name and all(found.get(k) == v for k, v in labels.items()):
            total += value
    return total



def test_request_counts_add_up_across_workers(two_workers):
    url = two_workers.url
    before = sample(scrape(url), "gateway_requests_total", route="/health", method="GET", status="200")
    for _ in range(20):
        assert requests.get(f"{url}/health", headers={"Connection": "close"}, timeout=5).status_code == 200
    # Whichever worker answers each scrape, it reports all twenty.
    for _ in range(6):
        after = sample(scrape(url, headers={"Connection": "close"}), "gateway_requests_total",
                       route="/health", method="GET", status="200")
        assert after - before == 20


def test_a_stream_records_time_to_first_token_duration_tokens_and_storage(two_workers, upstream):
    url = two_workers.url
    before = scrape(url)
    upstream.enqueue(fake.text("four words of text", reasoning="thinking"))
    resp, events = post_stream(url, {"model": MODEL, "input": "q"})
    assert events[-1]["type"] == "response.completed"
    usage = events[-1]["response"]["usage"]
    expected = {
        ("gateway_time_to_first_token_seconds_count", (("route", "/v1/responses"), ("model", MODEL))): 1,
        ("gateway_request_duration_seconds_count", (("route", "/v1/responses"), ("model", MODEL))): 1,
        ("gateway_tokens_total", (("model", MODEL), ("kind", "input"))): usage["input_tokens"],
        ("gateway_tokens_total", (("model", MODEL), ("kind", "output"))): usage["output_tokens"],
        ("gateway_storage_seconds_count", (("operation", "save_response"),)): 1,
        ("gateway_storage_seconds_count", (("operation", "start_response"),)): 1}

    def deltas() -> dict:
        after = scrape(url)
        return {key: sample(after, key[0], **dict(key[1])) - sample(before, key[0], **dict(key[1])) for key in expected}

    try:
        wait_for(lambda: deltas() == expected)   # recorded after the stream's last byte
    except AssertionError:
        assert deltas() == expected


def test_active_streams_and_websockets_are_gauged_while_open(two_workers, upstream):
    url = two_workers.url
    upstream.enqueue(fake.Script(deltas=[{"content": "slow"}] * 3, delay_s=0.7))
    with Socket(url) as ws:
        wait_for(lambda: sample(scrape(url), "gateway_active_websockets") == 1)
        ws.send_create(model=MODEL, input="q", store=False)
        wait_for(lambda: sample(scrape(url), "gateway_active_streams") == 1)
        assert ws.events()[-1]["type"] == "response.completed"
    wait_for(lambda: (s := scrape(url)) and sample(s, "gateway_active_streams") == 0
             and sample(s, "gateway_active_websockets") == 0 and s)


def test_upstream_errors_are_counted_by_kind(two_workers, upstream):
    url = two_workers.url
    before = sample(scrape(url), "gateway_upstream_errors_total", kind="server_error")
    upstream.enqueue(fake.http_error(503, "overloaded"))
    assert requests.post(f"{url}/v1/responses", json={"model": MODEL, "input": "q"}, timeout=10).status_code == 502
    assert sample(scrape(url), "gateway_upstream_errors_total", kind="server_error") - before == 1


def test_metrics_are_open_unless_a_key_is_required(make_gateway, upstream):
    open_url = make_gateway(llm_api_base=upstream.base_url, api_keys=("k1",))
    assert requests.get(f"{open_url}/metrics", timeout=5).status_code == 200
    closed = make_gateway(llm_api_base=upstream.base_url, api_keys=("k1",), metrics_require_key=True)
    assert requests.get(f"{closed}/metrics", timeout=5).status_code == 401
    answer = requests.get(f"{closed}/metrics", headers={"Authorization": "Bearer k1"}, timeout=5)
    assert answer.status_code == 200 and "gateway_requests_total" in answer.text
