"""Responses request + items → the request a Responses upstream gets on the stateful path."""
from __future__ import annotations

import base64
import json

import pytest

from gateway.errors import APIError
from gateway.tools import ToolMap
from gateway.translate.inputs import normalize_input
from gateway.translate.to_responses import build_items, build_responses_request, encode_items, \
    encode_responses_request

WEATHER = {"type": "function", "name": "get_weather", "description": "Weather.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": True}
FILES = {"type": "namespace", "name": "mcp__files",
         "tools": [{"type": "function", "name": "read_file", "parameters": {"type": "object", "properties": {}}}]}
PATCH = {"type": "custom", "name": "apply_patch", "format": {"type": "text"}}
SEARCH = {"type": "tool_search"}


def request(**fields):
    return {"model": "m", "input": "hi", **fields}


def build(items, tools=None, **fields):
    tool_map = ToolMap.build(tools)
    return build_responses_request(request(tools=tools, **fields), normalize_input(items), tool_map, "upstream-m")


def test_a_plain_turn_is_stateless_and_streamed_with_the_upstream_model():
    payload = build("Say hi", instructions="Be brief.")
    assert payload == {"model": "upstream-m", "input": [{"type": "message", "role": "user", "content": "Say hi"}],
                       "store": False, "stream": True, "instructions": "Be brief."}


def test_roles_map_as_for_the_chat_upstream_and_all_text_content_becomes_one_string():
    items = [{"role": "developer", "content": "Rules."}, {"role": "system", "content": "Sys."},
             {"role": "user", "content": [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}]},
             {"role": "assistant", "content": "Hello."}]
    assert build(items)["input"] == [
        {"type": "message", "role": "system", "content": "Rules."},
        {"type": "message", "role": "system", "content": "Sys."},
        {"type": "message", "role": "user", "content": "a\nb"},
        {"type": "message", "role": "assistant", "content": "Hello."}]


def test_images_keep_their_url_and_a_known_detail_and_text_files_are_inlined():
    data = "data:text/plain;base64," + base64.b64encode(b"file body").decode()
    items = [{"role": "user", "content": [{"type": "input_text", "text": "look"},
                                          {"type": "input_image", "image_url": "https://x/img.png", "detail": "original"},
                                          {"type": "input_file", "filename": "a.txt", "file_data": data}]}]
    assert build(items)["input"][0]["content"] == [
        {"type": "input_text", "text": "look"},
        {"type": "input_image", "image_url": "https://x/img.png", "detail": "auto"},
        {"type": "input_text", "text": "[file: a.txt]\nfile body"}]


def test_an_image_by_file_id_is_a_400_naming_the_part():
    with pytest.raises(APIError) as raised:
        build([{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}])
    assert raised.value.param == "input[0].content[0].file_id"


def test_replayed_codex_calls_go_upstream_under_their_lowered_names():
    items = [{"type": "function_call", "call_id": "c1", "name": "read_file", "namespace": "mcp__files",
              "arguments": "{}"},
             {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_text", "text": "data"}]},
             {"type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": "*** Begin Patch"},
             {"type": "custom_tool_call_output", "call_id": "c2", "output": "done"},
             {"type": "tool_search_call", "call_id": "c3", "arguments": {"query": "files"}, "execution": "client"},
             {"type": "tool_search_output", "call_id": "c3", "tools": [FILES], "execution": "client"}]
    assert build_items(normalize_input(items), ToolMap.build([FILES, PATCH, SEARCH])) == [
        {"type": "function_call", "call_id": "c1", "name": "agentic_ns__mcp__files__read_file", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "data"},
        {"type": "function_call", "call_id": "c2", "name": "apply_patch",
         "arguments": json.dumps({"input": "*** Begin Patch"})},
        {"type": "function_call_output", "call_id": "c2", "output": "done"},
        {"type": "function_call", "call_id": "c3", "name": "tool_search", "arguments": json.dumps({"query": "files"})},
        {"type": "function_call_output", "call_id": "c3", "output": "Loaded tools: agentic_ns__mcp__files__read_file"}]


def test_reasoning_is_replayed_as_reasoning_text_unless_replay_is_off():
    items = [{"type": "reasoning", "summary": [{"type": "summary_text", "text": "thought"}]},
             {"type": "reasoning", "summary": [], "encrypted_content": "opaque"}]
    assert build_items(items, ToolMap()) == [
        {"type": "reasoning", "summary": [], "content": [{"type": "reasoning_text", "text": "thought"}]}]
    assert build_items(items, ToolMap(), replay_reasoning=False) == []


def test_hosted_and_unknown_items_are_left_out():
    assert build_items([{"type": "web_search_call", "id": "ws_1", "status": "completed"}], ToolMap()) == []


def test_only_function_tools_go_upstream_with_codex_shapes_lowered():
    payload = build("hi", tools=[WEATHER, FILES, PATCH, SEARCH, {"type": "web_search"}])
    assert [tool["name"] for tool in payload["tools"]] == ["get_weather", "agentic_ns__mcp__files__read_file",
                                                          "apply_patch", "tool_search"]
    assert payload["tools"][0] == {"type": "function", "name": "get_weather", "parameters": WEATHER["parameters"],
                                   "description": "Weather.", "strict": True}
    assert payload["tools"][2]["parameters"]["required"] == ["input"]
    assert payload["tool_choice"] == "auto"  # the API's default, which vLLM's is not


@pytest.mark.parametrize("choice, sent", [
    ("required", "required"),
    ({"type": "function", "name": "get_weather"}, {"type": "function", "name": "get_weather"}),
    ({"type": "custom", "name": "apply_patch"}, {"type": "function", "name": "apply_patch"}),
    ({"type": "function", "name": "read_file", "namespace": "mcp__files"},
     {"type": "function", "name": "agentic_ns__mcp__files__read_file"}),
])
def test_tool_choice_names_the_lowered_function(choice, sent):
    assert build("hi", tools=[WEATHER, FILES, PATCH], tool_choice=choice)["tool_choice"] == sent


def test_allowed_tools_filters_the_offered_functions():
    choice = {"type": "allowed_tools", "mode": "required", "tools": [{"type": "tool_search"}]}
    payload = build("hi", tools=[WEATHER, SEARCH], tool_choice=choice)
    assert [tool["name"] for tool in payload["tools"]] == ["tool_search"]
    assert payload["tool_choice"] == "required"


def test_generation_fields_are_passed_on_and_gateway_fields_are_not():
    payload = build("hi", tools=[WEATHER], max_output_tokens=9, temperature=0.5, top_p=0.9, top_logprobs=2,
                    parallel_tool_calls=False, reasoning={"effort": "xhigh"}, metadata={"a": "b"}, user="u",
                    text={"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}},
                    prompt_cache_key="k", store=True)
    assert {k: payload[k] for k in ("max_output_tokens", "temperature", "top_p", "top_logprobs",
                                    "parallel_tool_calls")} == {"max_output_tokens": 9, "temperature": 0.5,
                                                                "top_p": 0.9, "top_logprobs": 2,
                                                                "parallel_tool_calls": False}
    assert payload["include"] == ["message.output_text.logprobs"]
    assert payload["reasoning"] == {"effort": "high"}
    assert payload["text"] == {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}}
    assert payload["store"] is False
    assert not {"metadata", "user", "prompt_cache_key"} & set(payload)


def test_stored_history_is_spliced_before_the_new_input_without_being_decoded():
    history = encode_items(normalize_input([{"role": "user", "content": "before"},
                                            {"role": "assistant", "content": "answer"}]), ToolMap())
    body = encode_responses_request(build("after"), history)
    assert json.loads(body)["input"] == [
        {"type": "message", "role": "user", "content": "before"},
        {"type": "message", "role": "assistant", "content": "answer"},
        {"type": "message", "role": "user", "content": "after"}]
