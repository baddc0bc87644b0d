"""Fuzzing every endpoint (hypothesis): hostile or careless input is a 4xx in the OpenAI error shape,
never a 5xx, on SQLite and PostgreSQL alike (PostgreSQL refuses U+0000 in text, SQLite does not),
and the gateway goes on answering. Streams that start end with exactly one terminal event.

Bodies are built from shapes the API knows (items, tools, tool_choice, ids) with their values
replaced by hostile ones: lone surrogates, U+0000, wrong types, deep nesting, bare NaN.
"""
from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import create_app
from gateway.config import Settings
from tests.storage.conftest import postgres_url  # noqa: F401  (the PostgreSQL schema fixture)

pytestmark = pytest.mark.integration
EXAMPLES_PER_BACKEND = 1100
TERMINAL = (b"event: response.completed", b"event: response.failed", b"event: response.incomplete")

NASTY_TEXT = st.sampled_from(["\x00", "\ud800", "a\udfffb", "resp_\x00", "", " ", "\U0001d518", "\\u0000", "x" * 300,
                              "msg_1", "call_1", "fake-model", "user", "function", "auto", "null", "-1"])
TEXT = st.one_of(NASTY_TEXT, st.text(max_size=12))
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=False), TEXT)
KEYS = st.one_of(st.sampled_from(["type", "role", "content", "id", "call_id", "name", "arguments", "input", "output",
                                  "tools", "namespace", "format", "text", "status", "summary", "encrypted_content",
                                  "mode", "parameters", "description", "defer_loading"]), st.text(max_size=6))
JSON = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
                    max_leaves=12)


def shaped(template: dict) -> st.SearchStrategy:
    """`template` as it is, or with one of its keys (or an `id`/`status` it lacks) set to hostile JSON:
    one wrong value in an otherwise valid shape is what reaches the deepest code."""
    keys = sorted(set(template) | {"id", "status"})
    return st.one_of(st.just(template),
                     st.builds(lambda key, value: {**template, key: value}, st.sampled_from(keys), JSON),
                     st.builds(lambda key: {k: v for k, v in template.items() if k != key}, st.sampled_from(keys)))


ITEM_TEMPLATES = [
    {"type": "message", "role": "user", "content": "hi"},
    {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
    {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
    {"type": "function_call_output", "call_id": "call_1", "output": "ok"},
    {"type": "custom_tool_call", "call_id": "call_2", "name": "apply_patch", "input": "x"},
    {"type": "custom_tool_call_output", "call_id": "call_2", "output": "ok"},
    {"type": "reasoning", "summary": [], "encrypted_content": "abc"},
    {"type": "tool_search_call", "call_id": "ts_1", "arguments": {"query": "q"}},
    {"type": "tool_search_output", "call_id": "ts_1", "tools": [{"type": "function", "name": "g"}]},
    {"type": "additional_tools", "tools": [{"type": "function", "name": "g"}]},
    {"type": "item_reference", "id": "msg_1"},
    {"type": "compaction_summary", "id": 7},
]
TOOL_TEMPLATES = [
    {"type": "function", "name": "f", "parameters": {"type": "object"}},
    {"type": "namespace", "name": "ns", "tools": [{"type": "function", "name": "g"}, {"type": "custom", "name": "h"}]},
    {"type": "custom", "name": "apply_patch", "format": {"type": "grammar", "syntax": "lark", "definition": "x"}},
    {"type": "namespace", "name": "ns", "tools": [{"type": "function", "name": "g"}]},
    {"type": "tool_search", "execution": "client"},
    {"type": "web_search"},
]
CHOICE_TEMPLATES = [
    {"type": "function", "name": "f"},
    {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "f"}]},
    {"type": "custom", "name": "apply_patch"},
]
ITEMS = st.one_of(*(shaped(t) for t in ITEM_TEMPLATES), JSON)
TOOLS = st.one_of(*(shaped(t) for t in TOOL_TEMPLATES), st.builds(
    lambda member: {"type": "namespace", "name": "ns", "tools": [member]}, st.one_of(*(shaped(t) for t in TOOL_TEMPLATES))))
CHOICES = st.one_of(st.sampled_from(["auto", "none", "required"]), *(shaped(t) for t in CHOICE_TEMPLATES),
                    st.builds(lambda ref: {"type": "allowed_tools", "mode": "auto", "tools": [ref]},
                              shaped({"type": "function", "name": "f"})))
VALID_CREATE = st.fixed_dictionaries(
    {"model": st.just("fake-model"), "input": st.one_of(st.lists(ITEMS, min_size=1, max_size=3), st.just("hi"))},
    optional={"tools": st.lists(TOOLS, max_size=3), "tool_choice": CHOICES, "stream": st.booleans(),
              "store": st.booleans(), "instructions": st.just("be brief")})
CREATE = st.one_of(VALID_CREATE, st.builds(lambda body, key, value: {**body, key: value}, VALID_CREATE,
                                           st.sampled_from(["model", "input", "tools", "tool_choice", "previous_response_id",
                                                            "conversation", "instructions", "store", "metadata", "text",
                                                            "reasoning", "max_output_tokens", "temperature", "include"]),
                                           JSON))


def deep(depth: int) -> bytes:
    return b'{"model":"fake-model","input":' + b"[" * depth + b"]" * depth + b"}"


RAW_BODIES = st.sampled_from([
    deep(1000), deep(100_000), b'{"model":"fake-model","input":"hi","temperature":NaN}',
    b'{"model":"fake-model","input":"hi","temperature":Infinity}', b'{"model":"fake-model","input":"\\ud800"}',
    b'{"model":"fake-\\u0000","input":"hi"}', b'{"model":"fake-model","input":"hi","store":false,"x":-Infinity}',
    b"\xff\xfe", b"[]", b"null", b'"text"', b"{", b'{"model":"fake-model","input":"\\udc00\\ud800"}',
])
IDS = st.one_of(NASTY_TEXT, st.text(min_size=1, max_size=10))
QUERY = st.dictionaries(st.sampled_from(["after", "limit", "order", "stream", "starting_after", "include"]),
                        st.one_of(NASTY_TEXT, st.integers(-5, 500).map(str)), max_size=3)


def path_of(template: str, ident: str, query: dict) -> str:
    path = template.format(quote(ident, safe="", errors="surrogatepass"))
    if query:
        path += "?" + "&".join(f"{k}={quote(v, safe='', errors='surrogatepass')}" for k, v in query.items())
    return path


def encoded(body) -> bytes:
    return json.dumps(body, ensure_ascii=True).encode()


REQUESTS = st.one_of(
    st.tuples(st.just("POST"), st.just("/v1/responses"), CREATE.map(encoded)),
    st.tuples(st.just("POST"), st.just("/v1/responses"), RAW_BODIES),
    st.tuples(st.just("POST"), st.just("/v1/conversations"),
              st.fixed_dictionaries({}, optional={"items": st.lists(ITEMS, max_size=3), "metadata": JSON}).map(encoded)),
    st.builds(lambda m, t, i, q: (m, path_of(t, i, q), b""), st.sampled_from(["GET", "DELETE"]),
              st.sampled_from(["/v1/responses/{}", "/v1/responses/{}/input_items", "/v1/conversations/{}",
                               "/v1/conversations/{}/items", "/v1/conversations/{}/items/msg_1", "/v1/models/{}"]),
              IDS, QUERY),
    st.builds(lambda t, i, b: ("POST", path_of(t, i, {}), encoded(b)),
              st.sampled_from(["/v1/conversations/{}", "/v1/conversations/{}/items"]), IDS,
              st.fixed_dictionaries({}, optional={"items": st.lists(ITEMS, max_size=2), "metadata": JSON})),
)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def client(request, fake_upstream, tmp_path_factory):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'gw.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    app = create_app(Settings(llm_api_base=fake_upstream.base_url, database_url=url, skip_llm_ready_check=True,
                              upstream_timeout_s=(2.0, 5.0), log_level="ERROR"))
    yield app.test_client()
    app.extensions["gateway"].close()


def check(response) -> None:
    body = response.get_data()
    assert response.status_code < 500, (response.status_code, body[:500])
    if response.status_code >= 400:
        error = json.loads(body)["error"]
        assert set(error) == {"message", "type", "param", "code"} and isinstance(error["message"], str)
    elif response.mimetype == "text/event-stream":
        assert sum(body.count(marker) for marker in TERMINAL) == 1, body[-500:]


@settings(max_examples=EXAMPLES_PER_BACKEND, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(request=REQUESTS)
def test_no_input_gets_a_5xx(client, request):
    method, path, body = request
    check(client.open(path, method=method, data=body, content_type="application/json"))


def test_the_gateway_still_answers_after_the_fuzz(client):
    assert client.get("/health").status_code == 200
    check(client.post("/v1/responses", json={"model": "fake-model", "input": "still there?"}))


# -- WebSocket frames ------------------------------------------------------------------------------

FRAMES = st.one_of(
    CREATE.map(lambda body: json.dumps({"type": "response.create", **body}, ensure_ascii=True)),
    RAW_BODIES.map(lambda raw: raw.decode("utf-8", "replace")),
    st.sampled_from(["", "[]", "{}", '{"type": 5}', '{"type": null}', "not json", '{"type": "response.create"}']),
)
WS_EXAMPLES = 400


@pytest.fixture(scope="module")
def socket_url(fake_upstream, tmp_path_factory):
    from tests.support import ThreadedGateway

    app = create_app(Settings(llm_api_base=fake_upstream.base_url, skip_llm_ready_check=True, log_level="ERROR",
                              database_url=f"sqlite:///{tmp_path_factory.mktemp('wsfuzz') / 'gw.db'}",
                              upstream_timeout_s=(2.0, 5.0)))
    server = ThreadedGateway(app).start()
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def socket(socket_url):
    from tests.integration.test_websocket import Socket

    with Socket(socket_url) as ws:
        yield ws


@settings(max_examples=WS_EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(frame=FRAMES)
def test_no_frame_gets_a_server_error_or_closes_the_socket(socket, frame):
    socket.send(frame)
    events = socket.events()
    last = events[-1]
    if last["type"] == "error":
        assert len(events) == 1 and last["status"] < 500, last
    else:
        assert last["type"] in ("response.completed", "response.failed", "response.incomplete"), last
        if last["type"] == "response.failed":
            assert last["response"]["error"]["code"] != "server_error" or "Upstream" in last["response"]["error"]["message"]
