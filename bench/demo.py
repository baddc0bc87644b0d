"""`make demo`: the bundled fake model + the gateway under gunicorn + a short scripted conversation.

Starts `tests.fakes.upstream` (model `demo-model`) and the gateway exactly as `make run` does
(gunicorn, shipped gunicorn.conf.py, upstream health wait at start-up), waits for `/ready`, then
talks to it with the official `openai` SDK: a streamed turn with reasoning, a tool call, and the
tool result sent back as the only input of a stored chain (`previous_response_id`). Both servers
are stopped on every exit path.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import openai

from bench._servers import start_fake, start_gateway, stop_all, stop_on_sigterm

MODEL = "demo-model"
WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "Current weather for a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                               "required": ["city"]},
                "strict": False}


class DemoError(RuntimeError):
    pass


def print_stream(stream) -> object:
    """Print reasoning and text deltas as they arrive; return the final Response."""
    open_kind = None
    for event in stream:
        kind = event.type
        if kind in ("response.reasoning_text.delta", "response.reasoning_summary_text.delta"):
            if open_kind != "reasoning":
                print("[reasoning] ", end="", flush=True)
                open_kind = "reasoning"
            print(event.delta, end="", flush=True)
        elif kind == "response.output_text.delta":
            if open_kind != "text":
                print("assistant> ", end="", flush=True)
                open_kind = "text"
            print(event.delta, end="", flush=True)
        elif kind == "response.output_item.done" and open_kind is not None:
            print()
            open_kind = None
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            if kind != "response.completed":
                why = event.response.error or event.response.incomplete_details
                raise DemoError(f"stream ended with {kind}: {why}")
            return event.response
    raise DemoError("stream ended without a terminal event")


def conversation(base_url: str) -> None:
    with openai.OpenAI(base_url=f"{base_url}/v1", api_key="demo", max_retries=0, timeout=30) as client:
        talk(client)


def talk(client: openai.OpenAI) -> None:
    print("\n── turn 1: streamed text (SSE) with reasoning ──")
    question = "Hello gateway, can you hear me?"
    print(f"user> {question}")
    with client.responses.create(model=MODEL, input=question, reasoning={"effort": "low"}, stream=True) as stream:
        final = print_stream(stream)
    kinds = [item.type for item in final.output]
    if "reasoning" not in kinds or not final.output_text:
        raise DemoError(f"turn 1: expected a reasoning item and text, got output items {kinds}")

    print("\n── turn 2: a function tool is offered (JSON, non-streaming) ──")
    question = "What is the weather like in Paris?"
    user_item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": question}]}
    print(f"user> {question}")
    raw = client.responses.with_raw_response.create(model=MODEL, input=[user_item], tools=[WEATHER_TOOL])
    body = raw.http_response.json()  # the items exactly as the gateway returned them
    calls = [item for item in body["output"] if item["type"] == "function_call"]
    if body["status"] != "completed" or len(calls) != 1:
        raise DemoError(f"turn 2: expected one function_call, got status {body['status']} and output {body['output']}")
    call = calls[0]
    print(f"tool call> {call['name']}({call['arguments']})")
    city = json.loads(call["arguments"]).get("city")
    if call["name"] != "get_weather" or not city:
        raise DemoError(f"turn 2: unexpected call {call}")

    print("\n── turn 3: only the tool result goes back, continuing the stored response (streamed) ──")
    result = json.dumps({"city": city, "forecast": "sunny", "temperature_c": 21})
    print(f"tool result> {result}   (previous_response_id={body['id']}; tools are inherited)")
    output = [{"type": "function_call_output", "call_id": call["call_id"], "output": result}]
    with client.responses.create(model=MODEL, input=output, previous_response_id=body["id"], stream=True) as stream:
        final = print_stream(stream)
    if result not in final.output_text:
        raise DemoError(f"turn 3: the answer does not mention the tool result: {final.output_text!r}")


def main() -> int:
    stop_on_sigterm()
    fake = gateway = None
    with tempfile.TemporaryDirectory(prefix="gateway-demo-") as tmp:
        try:
            kind = os.environ.get("UPSTREAM_API") or "chat"  # `UPSTREAM_API=responses make demo`
            print(f"starting the fake upstream and the gateway (gunicorn, gunicorn.conf.py, UPSTREAM_API={kind}) ...",
                  flush=True)
            fake = start_fake(Path(tmp), MODEL)
            gateway = start_gateway(Path(tmp), fake.url, {"GATEWAY_WORKERS": "1", "LOG_LEVEL": "WARNING",
                                                          "UPSTREAM_API": kind}, ready_path="/ready")
            print(f"fake upstream {fake.url} (pid {fake.pid}), gateway {gateway.url} (pid {gateway.pid}): ready")
            conversation(gateway.url)
            print("\ndemo OK: streamed text, reasoning, tool call and tool result all went through the gateway.")
            return 0
        except KeyboardInterrupt:
            print("\ndemo interrupted", file=sys.stderr)
            return 130
        except (DemoError, RuntimeError, openai.OpenAIError, OSError, KeyError, ValueError) as exc:
            print(f"\ndemo FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
            if gateway is not None:
                print(f"--- gateway log (tail) ---\n{gateway.log_tail()}", file=sys.stderr)
            return 1
        finally:
            stop_all(fake, gateway)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # a Ctrl-C held back while the servers were being stopped
        sys.exit(130)
