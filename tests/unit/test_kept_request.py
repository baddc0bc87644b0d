"""What the engine keeps of a request next to its stored response (`kept_request`)."""
from __future__ import annotations

from gateway.turn import kept_request

TOOLS = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]


def test_the_input_and_unset_fields_are_dropped_and_everything_a_continuation_inherits_is_kept():
    request = {"model": "m", "input": [{"type": "message", "role": "user", "content": "hi"}], "tools": TOOLS,
               "tool_choice": "auto", "temperature": None, "store": False, "parallel_tool_calls": False,
               "metadata": {}}
    assert kept_request(request) == {"model": "m", "tools": TOOLS, "tool_choice": "auto", "store": False,
                                     "parallel_tool_calls": False, "metadata": {}}


def test_the_request_itself_is_not_changed():
    request = {"model": "m", "input": "hi", "user": None}
    kept_request(request)
    assert request == {"model": "m", "input": "hi", "user": None}
