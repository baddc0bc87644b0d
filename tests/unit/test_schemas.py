"""parse_create_request: what a create body may contain, and the 400 that names the bad field."""
from __future__ import annotations

import pytest

from gateway.errors import APIError
from schemas import parse_create_request


def parse(**body):
    return parse_create_request({"model": "gpt-test", **body})


def rejection(body) -> APIError:
    with pytest.raises(APIError) as caught:
        parse_create_request(body)
    return caught.value


def user(content):
    return {"role": "user", "content": content}


# -- accepted shapes -------------------------------------------------------------------------

def test_string_input_is_kept_as_a_string():
    assert parse(input="Hello")["input"] == "Hello"


def test_missing_input_defaults_to_an_empty_list():
    assert parse()["input"] == []


def test_request_defaults():
    request = parse(input="hi")
    assert request["stream"] is False
    assert request["store"] is True
    assert request["background"] is False
    assert request["tools"] is None and request["tool_choice"] is None


def test_short_message_without_type_becomes_a_message_item():
    assert parse(input=[user("hi")])["input"] == [{"type": "message", "role": "user", "content": "hi"}]


@pytest.mark.parametrize("role", ["user", "assistant", "system", "developer"])
def test_every_message_role_is_accepted(role):
    assert parse(input=[{"role": role, "content": "x"}])["input"][0]["role"] == role


def test_unknown_top_level_fields_are_ignored():
    request = parse(input="hi", client_metadata={"session": "abc"}, prompt_cache_options={"mode": "x"})
    assert "client_metadata" not in request
    assert "prompt_cache_options" not in request


@pytest.mark.parametrize("tool", [
    {"type": "web_search"},
    {"type": "namespace", "name": "github", "description": "GitHub",
     "tools": [{"type": "function", "name": "list_prs", "parameters": {"type": "object"}}]},
    {"type": "future_tool", "x": 1},
], ids=["web_search", "namespace", "future_tool"])
def test_non_function_tools_are_kept_verbatim(tool):
    assert parse(tools=[tool])["tools"] == [tool]


def test_function_tool_keeps_keys_it_does_not_know():
    tool = {"type": "function", "name": "get_weather", "parameters": {"type": "object"},
            "strict": True, "defer_loading": True}
    assert parse(tools=[tool])["tools"] == [tool]


def test_unknown_item_types_are_kept_verbatim():
    item = {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"query": "q"}}
    assert parse(input=[item])["input"] == [item]


def test_message_keeps_id_status_and_phase():
    item = {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
            "phase": "commentary", "content": [{"type": "output_text", "text": "hi", "annotations": []}]}
    assert parse(input=[item])["input"] == [item]


def test_function_call_keeps_id_status_and_namespace():
    item = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "list_prs",
            "namespace": "github", "arguments": "{}", "status": "completed"}
    assert parse(input=[item])["input"] == [item]


def test_reasoning_item_keeps_encrypted_content():
    item = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque"}
    assert parse(input=[item])["input"] == [item]


def test_function_call_output_accepts_an_array_of_parts():
    parts = [{"type": "input_text", "text": "42"}]
    item = {"type": "function_call_output", "call_id": "call_1", "output": parts}
    assert parse(input=[item])["input"][0]["output"] == parts


def test_metadata_with_16_pairs_is_accepted():
    metadata = {f"k{i}": "v" for i in range(16)}
    assert parse(metadata=metadata)["metadata"] == metadata


@pytest.mark.parametrize("choice", [
    "auto", "none", "required",
    {"type": "function", "name": "f"},
    {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "f"}]},
])
def test_tool_choice_shapes_are_accepted(choice):
    assert parse(tool_choice=choice)["tool_choice"] == choice


# -- rejections ------------------------------------------------------------------------------

IMAGE_WITHOUT_SOURCE = [user("look"), user([{"type": "input_image", "detail": "auto"}])]

BAD_BODIES = {
    "model missing": ({"input": "hi"}, "model"),
    "model not a string": ({"model": 5}, "model"),
    "model empty": ({"model": ""}, "model"),
    "stream a string": ({"model": "m", "stream": "yes"}, "stream"),
    "temperature a string": ({"model": "m", "temperature": "1"}, "temperature"),
    "temperature above 2": ({"model": "m", "temperature": 3}, "temperature"),
    "top_p above 1": ({"model": "m", "top_p": 2}, "top_p"),
    "max_output_tokens zero": ({"model": "m", "max_output_tokens": 0}, "max_output_tokens"),
    "max_output_tokens a float": ({"model": "m", "max_output_tokens": 1.5}, "max_output_tokens"),
    "top_logprobs above 20": ({"model": "m", "top_logprobs": 21}, "top_logprobs"),
    "input a number": ({"model": "m", "input": 3}, "input"),
    "image without a source": ({"model": "m", "input": IMAGE_WITHOUT_SOURCE}, "input[1].content[0].image_url"),
    "unknown content part": ({"model": "m", "input": [user([{"type": "input_video"}])]}, "input[0].content[0].type"),
    "message with a bad role": ({"model": "m", "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
    "function_call_output without call_id": (
        {"model": "m", "input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
    "function_call with object arguments": (
        {"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": {}}]},
        "input[0].arguments"),
    "tool name with spaces": ({"model": "m", "tools": [{"type": "function", "name": "bad name"}]}, "tools[0].name"),
    "tool without name": ({"model": "m", "tools": [{"type": "function"}]}, "tools[0].name"),
    "tool_choice unknown string": ({"model": "m", "tool_choice": "always"}, "tool_choice"),
    "tool_choice function without name": ({"model": "m", "tool_choice": {"type": "function"}}, "tool_choice.name"),
    "allowed_tools with a bad mode": (
        {"model": "m", "tool_choice": {"type": "allowed_tools", "mode": "sometimes", "tools": []}},
        "tool_choice.mode"),
    "json_schema without schema": (
        {"model": "m", "text": {"format": {"type": "json_schema", "name": "out"}}}, "text.format"),
    "unknown text format": ({"model": "m", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
    "unknown reasoning effort": ({"model": "m", "reasoning": {"effort": "extreme"}}, "reasoning.effort"),
    "metadata with 17 pairs": ({"model": "m", "metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
    "truncation maybe": ({"model": "m", "truncation": "maybe"}, "truncation"),
}


@pytest.mark.parametrize("body, param", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_invalid_field_is_a_400_naming_it(body, param):
    error = rejection(body)
    assert (error.status, error.type, error.param) == (400, "invalid_request_error", param)


@pytest.mark.parametrize("body, param", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_error_message_quotes_the_param(body, param):
    assert f"'{param}'" in rejection(body).message



def test_metadata_value_that_is_not_a_string_names_the_key():
    assert rejection({"model": "m", "metadata": {"team": 1}}).param == "metadata.team"



def test_metadata_key_too_long_names_the_key():
    key = "k" * 65
    assert rejection({"model": "m", "metadata": {key: "v"}}).param == f"metadata.{key}"


def test_metadata_value_that_is_not_a_string_is_rejected():
    error = rejection({"model": "m", "metadata": {"team": 1}})
    assert error.status == 400 and error.param.startswith("metadata.team")


@pytest.mark.parametrize("body", [["model", "m"], "model=m", 42, None], ids=["list", "string", "number", "null"])
def test_body_that_is_not_an_object_is_a_400(body):
    error = rejection(body)
    assert (error.status, error.type, error.param) == (400, "invalid_request_error", None)


def test_rejection_renders_the_openai_error_shape():
    error = rejection({"input": "hi"}).to_dict()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"]) == ("invalid_request_error", "model")
    assert isinstance(error["message"], str) and error["message"]


def test_input_item_count_is_bounded():
    from gateway.errors import APIError
    from schemas.requests import MAX_INPUT_ITEMS, parse_create_request

    items = [{"role": "user", "content": "x"}] * (MAX_INPUT_ITEMS + 1)
    with pytest.raises(APIError) as raised:
        parse_create_request({"model": "m", "input": items})
    assert raised.value.status == 400 and raised.value.param == "input"
    assert parse_create_request({"model": "m", "input": items[:MAX_INPUT_ITEMS]})["input"]


def test_tool_count_is_bounded():
    from gateway.errors import APIError
    from schemas.requests import MAX_TOOLS, parse_create_request

    tools = [{"type": "function", "name": f"f{i}"} for i in range(MAX_TOOLS + 1)]
    with pytest.raises(APIError) as raised:
        parse_create_request({"model": "m", "input": "x", "tools": tools})
    assert raised.value.status == 400 and raised.value.param == "tools"
