"""The official openai SDK as the client: its own parsing must accept what we emit."""
from __future__ import annotations

import openai
import pytest

from tests.fakes import upstream as fake

pytestmark = pytest.mark.integration


@pytest.fixture
def client(gateway):
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key="sk-test", max_retries=0)


def test_sdk_streaming_text(client, upstream):
    upstream.enqueue(fake.text("Streaming through the SDK.", reasoning="Think first."))
    with client.responses.create(model="fake-model", input="hi", stream=True) as stream:
        events = list(stream)
    types = [e.type for e in events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Streaming through the SDK."
    assert events[-1].response.output_text == "Streaming through the SDK."


def test_sdk_stream_helper_collects_the_final_response(client, upstream):
    upstream.enqueue(fake.tool_calls([{"name": "lookup", "arguments": {"q": "x"}}]))
    tools = [{"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {
        "q": {"type": "string"}}}, "strict": False}]
    with client.responses.stream(model="fake-model", input="find x", tools=tools) as stream:
        final = stream.get_final_response()
    (call,) = final.output
    assert call.type == "function_call" and call.name == "lookup" and call.arguments == '{"q": "x"}'


def test_sdk_non_streaming(client, upstream):
    upstream.enqueue(fake.text("Plain JSON."))
    response = client.responses.create(model="fake-model", input="hi")
    assert response.output_text == "Plain JSON."
    assert response.usage.total_tokens > 0


def test_sdk_raises_typed_errors(client, upstream):
    upstream.enqueue(fake.context_overflow())
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="fake-model", input="hi")
    assert info.value.code == "context_length_exceeded"
