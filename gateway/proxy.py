"""The stateless proxy path of a Responses upstream (`UPSTREAM_API=responses`).

A request that needs nothing from the gateway (nothing stored or continued, only function tools,
only items the upstream knows) is forwarded almost as sent: the model resolved, the client's
end-to-end headers, the upstream's key. Its events are relayed with only the upstream's quirks
fixed (gateway/translate/relay.py), and the stream still ends with exactly one terminal event.
The upstream is always asked to stream: a non-streaming client gets the stream's final Response,
and the stream can be ended at once when the worker stops or that client leaves.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Generator

from gateway.errors import APIError, server_error
from gateway.lifecycle import InFlight
from gateway.translate.relay import Relay
from gateway.upstream import failures
from gateway.upstream.client import UpstreamClient
from gateway.upstream.kinds import RESPONSES

if TYPE_CHECKING:
    from gateway.turn import Turn


log = logging.getLogger(__name__)
# Item types a Responses upstream takes as they are (anything else needs the stateful path).
_NATIVE_ITEMS = ("message", "function_call", "function_call_output", "reasoning")


def proxied(request: dict[str, Any], items: list[dict[str, Any]]) -> bool:
    """Whether a Responses upstream can serve the request alone: nothing stored or continued, only
    function tools, and only items it knows (no sealed reasoning, references or Codex shapes)."""
    return (not request["store"] and not request.get("previous_response_id") and request.get("conversation") is None
            and request.get("generate") is not False and not request.get("context_management")
            and all(tool.get("type") == "function" for tool in request.get("tools") or [])
            and all(item.get("type") in _NATIVE_ITEMS and not item.get("encrypted_content") for item in items))


def relay_batches(client: UpstreamClient, turn: "Turn",
                  in_flight: InFlight) -> Generator[list[dict[str, Any]], None, None]:
    """The upstream's own events, numbered and with its quirks fixed, one batch per upstream event."""
    relay = Relay(turn.response)
    upstream = None
    try:
        upstream = client.open_stream(RESPONSES.path, turn.body, turn.forward_headers)
        turn.upstream_status = 200
        in_flight.add(turn.response["id"], upstream)
        yield from turn.batches(upstream, relay.feed)
        if not relay.ended:
            yield relay.fail(failures.ended_abnormally("no terminal event"))
    except APIError as error:
        turn.upstream_status = turn.upstream_status or error.upstream_status
        log.warning("proxied response failed", extra={"fields": {"response_id": relay.response.get("id"),
                                                                 "code": error.code}})
        if upstream is None:
            turn.refused = error
        yield relay.fail(error) if upstream is not None else relay.start_failed(error)
    except Exception:
        log.exception("proxied response %s crashed", relay.response.get("id"))
        yield relay.fail(server_error(500, "The gateway failed while relaying the upstream stream."))
    finally:
        if upstream is not None:
            in_flight.discard(turn.response["id"])
            upstream.close()
        turn.response, turn.error = relay.response, relay.error
