"""EventBuilder: vLLM chat chunks → Responses items and stream events (responses-api.md §6, §8.4).

Every test drives a whole turn (start, feed each chunk, finish or fail, terminal event) and runs
the event-order checker and the openai SDK validation over all of it.
"""
from __future__ import annotations

import json

import pytest

from gateway.errors import APIError
from gateway.tools import ToolMap
from gateway.translate.from_chat import ChatDecoder
from gateway.translate.from_upstream import EventBuilder
from gateway.translate.resource import new_response
from tests.unit.helpers import (check_events, content_chunk, finish_chunk, reasoning_chunk, role_chunk,
                                tool_chunk, usage_chunk)

WEATHER = {"type": "function", "name": "get_weather",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
TIME = {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}}
TOOLS = [WEATHER, TIME]


class Turn:
    def __init__(self, events, final):
        self.events = events
        self.final = final

    def of_type(self, kind):
        return [e for e in self.events if e["type"] == kind]

    def types(self):
        return [e["type"] for e in self.events]

    @property
    def output(self):
        return self.final["output"]


def drive(*chunks, tools=None, mode="text", error=None) -> Turn:
    builder = EventBuilder(new_response({"model": "gpt-test", "tools": tools}), ToolMap.build(tools), mode)
    decoder = ChatDecoder(builder)
    events = builder.start()
    for c in chunks:
        events += decoder.feed(c)
    events += builder.fail(error) if error is not None else decoder.end()
    events.append(builder.terminal_event())
    return Turn(events, check_events(events))


def text_turn(*pieces, finish="stop"):
    return drive(role_chunk(), *[content_chunk(p) for p in pieces], finish_chunk(finish), usage_chunk(5, 3))


# -- lifecycle -------------------------------------------------------------------------------

def test_stream_starts_with_created_then_in_progress():
    turn = text_turn("Hi")
    assert turn.types()[:2] == ["response.created", "response.in_progress"]
    assert turn.events[0]["response"]["status"] == "in_progress"


def test_sequence_numbers_start_at_zero_and_count_every_event():
    turn = drive(role_chunk(), reasoning_chunk("hmm"), content_chunk("Hi"), tool_chunk(0, name="get_weather"),
                 finish_chunk("tool_calls"), usage_chunk(1, 1), tools=TOOLS)
    assert [e["sequence_number"] for e in turn.events] == list(range(len(turn.events)))


def test_role_chunk_with_empty_content_opens_no_item():
    turn = drive(role_chunk(), finish_chunk("stop"))
    assert turn.types() == ["response.created", "response.in_progress", "response.completed"]
    assert turn.output == []


# -- text ------------------------------------------------------------------------------------

def test_text_becomes_one_completed_assistant_message():
    turn = text_turn("Hello", ", world")
    assert turn.final["status"] == "completed"
    [item] = turn.output
    assert (item["type"], item["role"], item["status"]) == ("message", "assistant", "completed")
    assert item["content"] == [{"type": "output_text", "text": "Hello, world", "annotations": [], "logprobs": []}]


def test_text_streams_the_message_event_sequence():
    assert text_turn("Hello", " world").types() == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.completed"]


def test_text_deltas_carry_the_upstream_pieces():
    turn = text_turn("Hel", "lo")
    assert [e["delta"] for e in turn.of_type("response.output_text.delta")] == ["Hel", "lo"]
    assert turn.of_type("response.output_text.done")[0]["text"] == "Hello"


def test_added_message_is_in_progress_and_empty():
    added = text_turn("Hi").of_type("response.output_item.added")[0]["item"]
    assert (added["status"], added["content"]) == ("in_progress", [])


def test_added_text_part_has_empty_annotations_and_logprobs():
    part = text_turn("Hi").of_type("response.content_part.added")[0]["part"]
    assert part == {"type": "output_text", "text": "", "annotations": [], "logprobs": []}


def test_message_id_has_the_msg_prefix():
    assert text_turn("Hi").output[0]["id"].startswith("msg_")


def test_logprobs_from_the_chunk_are_surfaced_on_the_delta():
    logprobs = [{"token": "Hi", "logprob": -0.25, "bytes": [72, 105],
                 "top_logprobs": [{"token": "Hi", "logprob": -0.25, "bytes": [72, 105]},
                                  {"token": "Hey", "logprob": -1.5, "bytes": [72, 101, 121]}]}]
    turn = drive(content_chunk("Hi", logprobs=logprobs), finish_chunk("stop"))
    [delta] = turn.of_type("response.output_text.delta")
    assert delta["logprobs"][0]["token"] == "Hi"
    assert delta["logprobs"][0]["logprob"] == -0.25
    assert [t["token"] for t in delta["logprobs"][0]["top_logprobs"]] == ["Hi", "Hey"]


def test_logprobs_are_collected_on_the_final_part():
    logprobs = [{"token": "Hi", "logprob": -0.25, "top_logprobs": []}]
    turn = drive(content_chunk("Hi", logprobs=logprobs), content_chunk("!", logprobs=[
        {"token": "!", "logprob": -0.5, "top_logprobs": []}]), finish_chunk("stop"))
    assert [lp["token"] for lp in turn.output[0]["content"][0]["logprobs"]] == ["Hi", "!"]


def test_choices_other_than_the_first_are_ignored():
    other = content_chunk("ignored")
    other["choices"][0]["index"] = 1
    turn = drive(content_chunk("kept"), other, finish_chunk("stop"))
    assert turn.output[0]["content"][0]["text"] == "kept"


# -- reasoning -------------------------------------------------------------------------------

def reasoning_turn(mode, field="reasoning"):
    return drive(role_chunk(), reasoning_chunk("Let me ", field), reasoning_chunk("think.", field),
                 finish_chunk("stop"), mode=mode)


def test_reasoning_in_text_mode_is_reasoning_text_content():
    [item] = reasoning_turn("text").output
    assert (item["type"], item["status"]) == ("reasoning", "completed")
    assert item["content"] == [{"type": "reasoning_text", "text": "Let me think."}]
    assert item["summary"] == []


def test_reasoning_in_text_mode_streams_reasoning_text_events():
    turn = reasoning_turn("text")
    assert turn.types()[2:-1] == [
        "response.output_item.added", "response.content_part.added",
        "response.reasoning_text.delta", "response.reasoning_text.delta",
        "response.reasoning_text.done", "response.content_part.done", "response.output_item.done"]
    assert turn.of_type("response.reasoning_text.done")[0]["text"] == "Let me think."


def test_reasoning_content_field_of_older_vllm_is_read():
    [item] = reasoning_turn("text", field="reasoning_content").output
    assert item["content"][0]["text"] == "Let me think."


def test_reasoning_in_summary_mode_is_a_summary_part():
    [item] = reasoning_turn("summary").output
    assert item["summary"] == [{"type": "summary_text", "text": "Let me think."}]
    assert "content" not in item


def test_reasoning_in_summary_mode_streams_summary_events():
    turn = reasoning_turn("summary")
    assert turn.types()[2:-1] == [
        "response.output_item.added", "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta", "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done", "response.reasoning_summary_part.done",
        "response.output_item.done"]
    assert turn.of_type("response.reasoning_summary_text.done")[0]["text"] == "Let me think."


def test_reasoning_id_has_the_rs_prefix():
    assert reasoning_turn("text").output[0]["id"].startswith("rs_")


@pytest.mark.parametrize("mode", ["text", "summary"])
def test_reasoning_then_text_gives_two_sequential_items(mode):
    turn = drive(role_chunk(), reasoning_chunk("Think."), content_chunk("Answer."), finish_chunk("stop"), mode=mode)
    assert [item["type"] for item in turn.output] == ["reasoning", "message"]
    done_index = turn.types().index("response.output_item.done")
    assert turn.types().index("response.output_item.added", done_index) > done_index
    assert turn.output[1]["content"][0]["text"] == "Answer."


# -- tool calls ------------------------------------------------------------------------------

def single_call(*argument_pieces, finish="tool_calls"):
    fragments = [tool_chunk(0, name="get_weather")] + [tool_chunk(0, arguments=p) for p in argument_pieces]
    return drive(role_chunk(), *fragments, finish_chunk(finish), usage_chunk(10, 7), tools=TOOLS)


def test_tool_call_added_item_is_in_progress_with_empty_arguments():
    added = single_call('{"city":', '"Paris"}').of_type("response.output_item.added")[0]["item"]
    assert added["type"] == "function_call"
    assert added["name"] == "get_weather"
    assert added["arguments"] == ""
    assert added["status"] == "in_progress"
    assert added["call_id"].startswith("call_")
    assert added["id"].startswith("fc_")


def test_tool_call_arguments_stream_as_deltas():
    turn = single_call('{"city":', '"Paris"}')
    assert [e["delta"] for e in turn.of_type("response.function_call_arguments.delta")] == ['{"city":', '"Paris"}']


def test_tool_call_done_carries_the_full_arguments():
    turn = single_call('{"city":', '"Paris"}')
    [done] = turn.of_type("response.function_call_arguments.done")
    assert (done["arguments"], done["name"]) == ('{"city":"Paris"}', "get_weather")
    [item] = turn.output
    assert (item["arguments"], item["status"]) == ('{"city":"Paris"}', "completed")


def test_tool_call_keeps_its_call_id_from_added_to_done():
    turn = single_call("{}")
    added = turn.of_type("response.output_item.added")[0]["item"]
    assert turn.output[0]["call_id"] == added["call_id"]


def test_tool_call_with_stop_finish_reason_is_completed():
    assert single_call("{}", finish="stop").final["status"] == "completed"


def test_parallel_calls_become_two_items_in_index_order():
    turn = drive(tool_chunk(0, name="get_weather"), tool_chunk(0, arguments='{"city":"Paris"}'),
                 tool_chunk(1, name="get_time"), tool_chunk(1, arguments="{}"),
                 finish_chunk("tool_calls"), tools=TOOLS)
    assert [(i["name"], i["arguments"]) for i in turn.output] == [
        ("get_weather", '{"city":"Paris"}'), ("get_time", "{}")]
    assert len({i["call_id"] for i in turn.output}) == 2


def test_interleaved_fragments_assemble_each_call():
    turn = drive(tool_chunk(0, name="get_weather"), tool_chunk(1, name="get_time"),
                 tool_chunk(0, arguments='{"city":'), tool_chunk(1, arguments='{"tz":'),
                 tool_chunk(0, arguments='"Paris"}'), tool_chunk(1, arguments='"UTC"}'),
                 finish_chunk("tool_calls"), tools=TOOLS)
    assert [(i["name"], i["arguments"]) for i in turn.output] == [
        ("get_weather", '{"city":"Paris"}'), ("get_time", '{"tz":"UTC"}')]
    for done in turn.of_type("response.function_call_arguments.done"):
        item = next(i for i in turn.output if i["id"] == done["item_id"])
        assert done["arguments"] == item["arguments"]


def test_each_call_deltas_add_up_to_its_arguments():
    turn = drive(tool_chunk(0, name="get_weather"), tool_chunk(1, name="get_time"),
                 tool_chunk(0, arguments='{"city":'), tool_chunk(1, arguments='{}'),
                 tool_chunk(0, arguments='"Paris"}'), finish_chunk("tool_calls"), tools=TOOLS)
    for item in turn.output:
        deltas = [e["delta"] for e in turn.of_type("response.function_call_arguments.delta")
                  if e["item_id"] == item["id"]]
        assert "".join(deltas) == item["arguments"]


def test_text_then_a_tool_call_gives_message_then_call():
    turn = drive(role_chunk(), content_chunk("Checking."), tool_chunk(0, name="get_weather"),
                 tool_chunk(0, arguments='{"city":"Paris"}'), finish_chunk("tool_calls"), tools=TOOLS)
    assert [i["type"] for i in turn.output] == ["message", "function_call"]
    assert turn.output[0]["status"] == "completed"


def test_call_to_an_undeclared_function_keeps_its_name():
    turn = drive(tool_chunk(0, name="mystery", arguments="{}"), finish_chunk("tool_calls"), tools=TOOLS)
    assert (turn.output[0]["type"], turn.output[0]["name"]) == ("function_call", "mystery")


def test_invalid_json_arguments_are_kept_raw():
    assert single_call('{"city": Par').output[0]["arguments"] == '{"city": Par'


def test_empty_arguments_become_an_empty_object():
    turn = single_call()
    assert turn.output[0]["arguments"] == "{}"
    assert turn.of_type("response.function_call_arguments.done")[0]["arguments"] == "{}"


# -- usage -----------------------------------------------------------------------------------

def test_usage_maps_prompt_completion_and_total():
    usage = drive(content_chunk("Hi"), finish_chunk("stop"), usage_chunk(12, 6)).final["usage"]
    assert (usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]) == (12, 6, 18)


def test_usage_maps_cached_and_reasoning_tokens():
    usage = drive(content_chunk("Hi"), finish_chunk("stop"), usage_chunk(12, 6, cached=8, reasoning=4)).final["usage"]
    assert usage["input_tokens_details"]["cached_tokens"] == 8
    assert usage["output_tokens_details"]["reasoning_tokens"] == 4


def test_usage_detail_objects_are_present_when_upstream_omits_them():
    usage = drive(content_chunk("Hi"), finish_chunk("stop"), usage_chunk(12, 6)).final["usage"]
    assert usage["input_tokens_details"]["cached_tokens"] == 0
    assert usage["output_tokens_details"]["reasoning_tokens"] == 0


def test_usage_is_only_on_the_terminal_event():
    turn = drive(content_chunk("Hi"), finish_chunk("stop"), usage_chunk(1, 1))
    assert turn.events[0]["response"]["usage"] is None
    assert turn.events[-1]["response"]["usage"] is not None


# -- terminal status -------------------------------------------------------------------------

def test_finish_length_is_incomplete_for_max_output_tokens():
    turn = text_turn("Once upon a", finish="length")
    assert turn.events[-1]["type"] == "response.incomplete"
    assert turn.final["status"] == "incomplete"
    assert turn.final["incomplete_details"] == {"reason": "max_output_tokens"}


def test_finish_length_marks_the_open_message_incomplete():
    turn = text_turn("Once upon a", finish="length")
    assert turn.of_type("response.output_item.done")[0]["item"]["status"] == "incomplete"
    assert turn.output[0]["content"][0]["text"] == "Once upon a"


def test_content_filter_is_incomplete_for_content_filter():
    turn = text_turn("Well", finish="content_filter")
    assert turn.events[-1]["type"] == "response.incomplete"
    assert turn.final["incomplete_details"] == {"reason": "content_filter"}


def test_completed_response_has_no_error_and_a_completion_time():
    final = text_turn("Hi").final
    assert final["error"] is None and final["incomplete_details"] is None
    assert isinstance(final["completed_at"], int)


def test_missing_finish_reason_fails_with_server_error():
    turn = drive(role_chunk(), content_chunk("Hi"))
    assert turn.events[-1]["type"] == "response.failed"
    assert turn.final["status"] == "failed"
    assert turn.final["error"]["code"] == "server_error"


@pytest.mark.parametrize("reason", ["abort", "error"])
def test_abnormal_finish_reason_fails_with_server_error(reason):
    turn = text_turn("Hi", finish=reason)
    assert turn.events[-1]["type"] == "response.failed"
    assert turn.final["error"]["code"] == "server_error"


def test_fail_mid_message_closes_it_incomplete():
    turn = drive(role_chunk(), content_chunk("Hal"), error=APIError(429, "slow down", code="rate_limit_exceeded"))
    assert turn.types()[-4:] == ["response.output_text.done", "response.content_part.done",
                                 "response.output_item.done", "response.failed"]
    assert turn.output[0]["status"] == "incomplete"


def test_fail_mid_tool_call_closes_it_incomplete():
    turn = drive(tool_chunk(0, name="get_weather", arguments='{"ci'), tools=TOOLS,
                 error=APIError(502, "upstream dropped", type="server_error", code="server_error"))
    assert turn.types()[-3:] == ["response.function_call_arguments.done", "response.output_item.done",
                                 "response.failed"]
    assert turn.output[0]["status"] == "incomplete"


def test_fail_carries_the_error_code_and_message():
    turn = drive(content_chunk("Hi"), error=APIError(429, "Please try again in 2s.", code="rate_limit_exceeded"))
    assert turn.final["error"] == {"code": "rate_limit_exceeded", "message": "Please try again in 2s."}


def test_fail_before_any_item_emits_only_the_terminal_event():
    turn = drive(error=APIError(502, "down", type="server_error", code="server_error"))
    assert turn.types() == ["response.created", "response.in_progress", "response.failed"]


def test_fail_with_a_5xx_without_code_reports_server_error():
    turn = drive(error=APIError(500, "boom", type="server_error"))
    assert turn.final["error"]["code"] == "server_error"


def test_every_event_is_json_serializable():
    turn = drive(reasoning_chunk("r"), content_chunk("t"), tool_chunk(0, name="get_time", arguments="{}"),
                 finish_chunk("tool_calls"), usage_chunk(1, 1), tools=TOOLS)
    for event in turn.events:
        json.dumps(event)
