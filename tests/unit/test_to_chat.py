"""Responses request + items → one Chat Completions request (responses-api.md §8.1, §8.2)."""
from __future__ import annotations

import base64
import json

import pytest

from gateway.errors import APIError
from gateway.tools import ToolMap
from gateway.translate.inputs import normalize_input
from gateway.translate.to_chat import build_chat_request, build_messages
from schemas import parse_create_request

UPSTREAM = "Qwen/Qwen3-8B"
WEATHER = {"type": "function", "name": "get_weather", "description": "Weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": True}
TIME = {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}}


def payload(upstream_model: str = UPSTREAM, replay_reasoning: bool = True, **body):
    """The upstream payload for a create body, through the same steps as the engine."""
    request = parse_create_request({"model": "client-model", "input": "hi", **body})
    items = normalize_input(request["input"])
    return build_chat_request(request, items, ToolMap.build(request["tools"]), upstream_model,
                              replay_reasoning=replay_reasoning)


def messages(input, **body):
    return payload(input=input, **body)["messages"]


def rejection(**body) -> APIError:
    with pytest.raises(APIError) as caught:
        payload(**body)
    return caught.value


def user(content):
    return {"role": "user", "content": content}


def text(value, kind="input_text"):
    return {"type": kind, "text": value}


def image(**fields):
    return {"type": "input_image", **fields}


def call(call_id, name="get_weather", arguments='{"city":"Paris"}'):
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments}


def output(call_id, value="sunny"):
    return {"type": "function_call_output", "call_id": call_id, "output": value}


def assistant(value):
    return {"type": "message", "role": "assistant", "content": [text(value, "output_text")]}


def reasoning(content=None, summary=None):
    item = {"type": "reasoning", "summary": [text(s, "summary_text") for s in summary or []]}
    if content is not None:
        item["content"] = [text(c, "reasoning_text") for c in content]
    return item


def text_file(body: bytes, mime="text/plain", name="notes.txt"):
    data = f"data:{mime};base64,{base64.b64encode(body).decode()}"
    return {"type": "input_file", "filename": name, "file_data": data}


# -- normalize_input -------------------------------------------------------------------------

def test_string_input_normalizes_to_one_user_message():
    assert normalize_input("Hello") == [{"type": "message", "role": "user",
                                         "content": [{"type": "input_text", "text": "Hello"}]}]


def test_items_with_content_parts_pass_through_unchanged():
    items = [{"type": "message", "role": "user", "content": [text("hi")]}, call("call_a"), output("call_a")]
    assert normalize_input(items) == items


def test_short_message_normalizes_to_a_typed_message():
    assert normalize_input([{"role": "user", "content": "hi"}])[0]["type"] == "message"


def test_user_string_content_normalizes_to_one_input_text_part():
    assert normalize_input([{"type": "message", "role": "user", "content": "hi"}])[0]["content"] == [text("hi")]


def test_assistant_string_content_normalizes_to_one_output_text_part():
    [item] = normalize_input([{"role": "assistant", "content": "ok"}])
    assert item["content"] == [{"type": "output_text", "text": "ok", "annotations": []}]


def test_normalizing_keeps_the_message_extra_keys():
    [item] = normalize_input([{"type": "message", "id": "msg_1", "phase": "final_answer",
                               "role": "assistant", "content": "ok"}])
    assert (item["id"], item["phase"]) == ("msg_1", "final_answer")


def test_short_message_without_type_reaches_the_upstream():
    items = normalize_input([{"role": "user", "content": "hi"}])
    assert build_messages(items, None, ToolMap.build(None)) == [{"role": "user", "content": "hi"}]


# -- messages ---------------------------------------------------------------------------------

def test_string_input_becomes_one_user_message():
    assert messages("Hello") == [{"role": "user", "content": "Hello"}]


def test_instructions_become_a_leading_system_message():
    assert messages("Hello", instructions="Be brief.") == [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]


@pytest.mark.parametrize("role", ["developer", "system"])
def test_developer_and_system_roles_become_system(role):
    assert messages([{"role": role, "content": "Rules."}, user("hi")])[0] == {"role": "system", "content": "Rules."}


def test_user_text_parts_are_joined_into_one_string():
    assert messages([user([text("line one"), text("line two")])]) == [
        {"role": "user", "content": "line one\nline two"}]


def test_image_url_becomes_an_image_url_part_next_to_the_text():
    content = messages([user([text("What is this?"), image(image_url="https://x.test/cat.png")])])[0]["content"]
    assert content == [{"type": "text", "text": "What is this?"},
                       {"type": "image_url", "image_url": {"url": "https://x.test/cat.png"}}]


def test_image_data_url_is_passed_as_the_url():
    data_url = "data:image/png;base64,iVBORw0KGgo="
    content = messages([user([image(image_url=data_url)])])[0]["content"]
    assert content == [{"type": "image_url", "image_url": {"url": data_url}}]


@pytest.mark.parametrize("detail", ["auto", "low", "high"])
def test_image_detail_is_kept(detail):
    part = messages([user([image(image_url="https://x.test/a.png", detail=detail)])])[0]["content"][0]
    assert part["image_url"]["detail"] == detail


def test_image_detail_original_is_dropped():
    part = messages([user([image(image_url="https://x.test/a.png", detail="original")])])[0]["content"][0]
    assert part["image_url"] == {"url": "https://x.test/a.png"}


def test_image_by_file_id_is_a_400_naming_file_id():
    error = rejection(input=[user("first"), user([text("look"), image(file_id="file_123")])])
    assert (error.status, error.param) == (400, "input[1].content[1].file_id")


def test_text_file_data_url_is_inlined_as_text():
    assert messages([user([text("Summarize:"), text_file(b"hello world")])]) == [
        {"role": "user", "content": "Summarize:\n[file: notes.txt]\nhello world"}]


def test_json_file_data_url_is_inlined_as_text():
    content = messages([user([text_file(b'{"a": 1}', mime="application/json", name="a.json")])])[0]["content"]
    assert content == '[file: a.json]\n{"a": 1}'


@pytest.mark.parametrize("part", [
    {"type": "input_file", "file_id": "file_1"},
    {"type": "input_file", "file_url": "https://x.test/a.pdf"},
    {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="},
    {"type": "input_file", "filename": "a.txt", "file_data": base64.b64encode(b"plain base64").decode()},
], ids=["file_id", "file_url", "pdf data URL", "bare base64"])
def test_other_input_files_are_a_400_naming_the_part(part):
    error = rejection(input=[user([text("read"), part])])
    assert (error.status, error.param) == (400, "input[0].content[1]")


def test_text_file_that_is_not_base64_is_a_400():
    part = {"type": "input_file", "filename": "a.txt", "file_data": "data:text/plain;base64,@@@"}
    assert rejection(input=[user([part])]).param == "input[0].content[0]"


def test_assistant_output_text_parts_become_assistant_content():
    item = {"type": "message", "role": "assistant",
            "content": [text("Hello ", "output_text"), text("there.", "output_text")]}
    assert messages([user("hi"), item])[1] == {"role": "assistant", "content": "Hello there."}


def test_consecutive_function_calls_become_one_assistant_message_in_order():
    assert messages([user("weather?"), call("call_a"), call("call_b", arguments='{"city":"Rome"}'),
                     output("call_a"), output("call_b")])[1] == {
        "role": "assistant", "content": None, "tool_calls": [
            {"id": "call_a", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            {"id": "call_b", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}}]}


def test_assistant_text_before_calls_absorbs_them():
    msgs = messages([user("weather?"), assistant("Let me check."), call("call_a"), output("call_a")])
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool"]
    assert msgs[1]["content"] == "Let me check."
    assert [c["id"] for c in msgs[1]["tool_calls"]] == ["call_a"]


def test_calls_after_a_tool_result_start_a_new_assistant_message():
    msgs = messages([user("go"), call("call_a"), output("call_a"), call("call_b"), output("call_b")])
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool", "assistant", "tool"]


def test_function_call_output_string_becomes_a_tool_message():
    assert messages([user("go"), call("call_a"), output("call_a", "22 degrees")])[2] == {
        "role": "tool", "tool_call_id": "call_a", "content": "22 degrees"}


def test_function_call_output_text_parts_are_joined_with_newlines():
    parts = [text("line 1"), image(image_url="https://x.test/p.png"), text("line 2")]
    assert messages([user("go"), call("call_a"), output("call_a", parts)])[2]["content"] == "line 1\nline 2"


def test_reasoning_text_becomes_reasoning_content_of_the_next_assistant_message():
    msgs = messages([user("hi"), reasoning(content=["I should ", "greet."], summary=["Greeting"]),
                     assistant("Hello!")])
    assert msgs[1] == {"role": "assistant", "content": "Hello!", "reasoning_content": "I should greet."}


def test_reasoning_summary_is_used_when_there_is_no_reasoning_text():
    msgs = messages([user("hi"), reasoning(summary=["Plan.", "Greet."]), assistant("Hello!")])
    assert msgs[1]["reasoning_content"] == "Plan.\nGreet."


def test_reasoning_attaches_to_the_tool_call_message_that_follows():
    msgs = messages([user("weather?"), reasoning(content=["Need the tool."]), call("call_a"), output("call_a")])
    assert msgs[1]["reasoning_content"] == "Need the tool."
    assert msgs[1]["tool_calls"][0]["id"] == "call_a"


def test_reasoning_is_dropped_when_replay_is_disabled():
    msgs = messages([user("hi"), reasoning(content=["secret"]), assistant("Hello!")], replay_reasoning=False)
    assert msgs[1] == {"role": "assistant", "content": "Hello!"}


def test_build_messages_without_replay_drops_reasoning():
    items = [{"type": "message", "role": "user", "content": "hi"}, reasoning(content=["x"]), assistant("ok")]
    assert build_messages(items, None, ToolMap.build(None), replay_reasoning=False) == [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]


def test_items_a_chat_model_cannot_use_are_left_out():
    hosted = {"type": "web_search_call", "id": "ws_1", "status": "completed"}
    assert messages([user("hi"), hosted, assistant("ok")]) == [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]


# -- tools -----------------------------------------------------------------------------------

def test_function_tool_is_lowered_to_a_chat_function():
    assert payload(tools=[WEATHER])["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": True}}]


def test_function_tool_without_parameters_gets_an_empty_object_schema():
    function = payload(tools=[{"type": "function", "name": "ping"}])["tools"][0]["function"]
    assert function == {"name": "ping", "parameters": {"type": "object", "properties": {}}}


def test_hosted_and_unknown_tools_are_not_sent_upstream():
    tools = payload(tools=[{"type": "web_search"}, WEATHER, {"type": "future_tool", "x": 1}])["tools"]
    assert [t["function"]["name"] for t in tools] == ["get_weather"]


def test_only_hosted_tools_means_no_tools_upstream():
    body = payload(tools=[{"type": "web_search"}], tool_choice="auto")
    assert "tools" not in body and "tool_choice" not in body


def test_duplicate_function_names_are_a_400():
    error = rejection(tools=[WEATHER, dict(WEATHER, description="again")])
    assert (error.status, error.param) == (400, "tools[1].name")


@pytest.mark.parametrize("choice", ["auto", "none", "required"])
def test_tool_choice_modes_pass_through(choice):
    assert payload(tools=[WEATHER], tool_choice=choice)["tool_choice"] == choice


def test_no_tool_choice_means_none_is_sent():
    assert "tool_choice" not in payload(tools=[WEATHER])


def test_named_function_choice_is_lowered():
    assert payload(tools=[WEATHER, TIME], tool_choice={"type": "function", "name": "get_time"})["tool_choice"] == {
        "type": "function", "function": {"name": "get_time"}}


def test_named_function_not_in_tools_is_a_400():
    error = rejection(tools=[WEATHER], tool_choice={"type": "function", "name": "get_time"})
    assert (error.status, error.param) == (400, "tool_choice.name")



def test_named_function_with_no_tools_declared_is_a_400():
    error = rejection(tool_choice={"type": "function", "name": "get_time"})
    assert (error.status, error.param) == (400, "tool_choice.name")


@pytest.mark.parametrize("mode", ["auto", "required"])
def test_allowed_tools_filters_tools_and_sends_its_mode(mode):
    body = payload(tools=[WEATHER, TIME], tool_choice={
        "type": "allowed_tools", "mode": mode, "tools": [{"type": "function", "name": "get_time"}]})
    assert [t["function"]["name"] for t in body["tools"]] == ["get_time"]
    assert body["tool_choice"] == mode


def test_allowed_tools_naming_no_declared_function_is_a_400():
    error = rejection(tools=[WEATHER], tool_choice={
        "type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "nope"}]})
    assert (error.status, error.param) == (400, "tool_choice.tools")


@pytest.mark.parametrize("choice", ["auto", "required"])
def test_no_tools_means_no_tool_choice(choice):
    body = payload(tool_choice=choice)
    assert "tools" not in body and "tool_choice" not in body


@pytest.mark.parametrize("value", [True, False])
def test_parallel_tool_calls_is_passed_with_tools(value):
    assert payload(tools=[WEATHER], parallel_tool_calls=value)["parallel_tool_calls"] is value


def test_function_call_history_uses_the_declared_name():
    msgs = messages([user("go"), call("call_a", name="get_time"), output("call_a")], tools=[TIME])
    assert msgs[1]["tool_calls"][0]["function"]["name"] == "get_time"


# -- text.format -----------------------------------------------------------------------------

def test_json_schema_format_becomes_response_format():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    body = payload(text={"format": {"type": "json_schema", "name": "answer", "schema": schema, "strict": True}})
    assert body["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "answer", "schema": schema, "strict": True}}


def test_json_object_format_becomes_json_object():
    assert payload(text={"format": {"type": "json_object"}})["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize("text_config", [None, {"format": {"type": "text"}}, {"verbosity": "low"}])
def test_text_format_sends_no_response_format(text_config):
    assert "response_format" not in payload(text=text_config)


# -- sampling and limits ---------------------------------------------------------------------

def test_max_output_tokens_becomes_max_tokens():
    body = payload(max_output_tokens=256)
    assert body["max_tokens"] == 256 and "max_output_tokens" not in body


def test_temperature_top_p_and_user_are_passed():
    body = payload(temperature=0.2, top_p=0.9, user="u-1")
    assert (body["temperature"], body["top_p"], body["user"]) == (0.2, 0.9, "u-1")


def test_unset_sampling_fields_are_not_sent():
    body = payload()
    for key in ("max_tokens", "temperature", "top_p", "user", "logprobs", "top_logprobs", "reasoning_effort"):
        assert key not in body


@pytest.mark.parametrize("effort, upstream", [
    ("minimal", "low"), ("low", "low"), ("medium", "medium"), ("high", "high"), ("xhigh", "high"), ("max", "high"),
])
def test_reasoning_effort_is_mapped(effort, upstream):
    assert payload(reasoning={"effort": effort})["reasoning_effort"] == upstream


def test_reasoning_effort_none_sends_no_effort():
    assert "reasoning_effort" not in payload(reasoning={"effort": "none"})


def test_top_logprobs_turns_on_logprobs():
    body = payload(top_logprobs=5)
    assert (body["logprobs"], body["top_logprobs"]) == (True, 5)


def test_gateway_only_fields_are_never_forwarded():
    body = payload(metadata={"k": "v"}, store=False, prompt_cache_key="pck", include=["reasoning.encrypted_content"],
                   truncation="auto", service_tier="flex", safety_identifier="sid", instructions="Be brief.",
                   client_metadata={"x": "y"})
    assert set(body) == {"model", "messages", "stream", "stream_options"}


def test_always_streams_with_usage():
    body = payload()
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


def test_model_is_the_upstream_name_given():
    assert payload(upstream_model="served-name")["model"] == "served-name"


def test_same_request_gives_an_identical_payload():
    body = dict(instructions="sys", tools=[WEATHER, TIME], tool_choice="auto", temperature=0.5,
                input=[user([text("a"), image(image_url="https://x.test/i.png", detail="low")]),
                       reasoning(content=["think"]), assistant("ok"), call("call_a"), call("call_b"),
                       output("call_a"), output("call_b", [text("p")])])
    first, second = payload(**body), payload(**body)
    assert json.dumps(first) == json.dumps(second)
