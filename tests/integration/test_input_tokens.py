"""`POST /v1/responses/input_tokens`: the input counted as the upstream would see it, by its
`/tokenize` endpoint (the shared scenario `input_tokens_count` checks it against a real vLLM)."""
from __future__ import annotations

import pytest
import requests

from tests.fakes import upstream as fake

pytestmark = pytest.mark.integration
MODEL = "fake-model"


def count(url: str, **body) -> requests.Response:
    return requests.post(f"{url}/v1/responses/input_tokens", json={"model": MODEL, **body}, timeout=10)


def test_a_continuation_is_counted_with_its_history_as_the_upstream_counts_it(gateway, upstream):
    upstream.enqueue(fake.text("A first answer that is long enough to count."), fake.text("ok"))
    first = requests.post(f"{gateway}/v1/responses", json={"model": MODEL, "input": "First question?"},
                          timeout=10).json()
    body = {"input": "And the second question?", "previous_response_id": first["id"]}
    counted = count(gateway, **body)
    assert counted.status_code == 200
    assert counted.json()["object"] == "response.input_tokens"
    alone = count(gateway, input=body["input"]).json()["input_tokens"]
    second = requests.post(f"{gateway}/v1/responses", json={"model": MODEL, **body}, timeout=10).json()
    assert counted.json()["input_tokens"] == second["usage"]["input_tokens"] > alone
    assert len(upstream.chat_requests()) == 2, "counting generates nothing"


def test_counting_works_over_a_responses_upstream_too(gunicorn_factory, upstream):
    server = gunicorn_factory(UPSTREAM_API="responses")
    counted = count(server.url, input="Count these few words please.")
    assert counted.status_code == 200 and counted.json()["input_tokens"] > 0


def test_without_a_tokenize_endpoint_counting_is_a_501_saying_so(gateway, upstream):
    upstream.tokenize = False
    answer = count(gateway, input="hi")
    assert answer.status_code == 501 and answer.json()["error"]["code"] == "input_tokens_unavailable"


@pytest.mark.parametrize("body, status, code", [
    ({"model": "no-such-model", "input": "hi"}, 404, "model_not_found"),
    ({"input": 5}, 400, "invalid_value"),
    ({"input": "hi", "previous_response_id": "resp_nowhere"}, 400, "previous_response_not_found"),
], ids=["unknown-model", "bad-input", "unknown-parent"])
def test_a_bad_count_request_gets_the_error_a_create_would(gateway, upstream, body, status, code):
    answer = count(gateway, **body)
    assert answer.status_code == status and answer.json()["error"]["code"] == code, answer.text
