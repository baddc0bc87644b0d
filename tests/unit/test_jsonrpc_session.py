"""The JSON-RPC session's own decisions, without a transport: calls refused while the gateway
stops, and a host that stopped reading (gateway/jsonrpc/session.py)."""
from __future__ import annotations

import json

import pytest

from gateway.config import Settings
from gateway.jsonrpc.call import HostGone
from gateway.jsonrpc.session import RpcSession
from gateway.lifecycle import shutting_down
from gateway.tenants import KeyRing
from gateway.ws_buffers import SendOverflow

CALL = {"id": 5, "method": "responsesApi/call", "params": {
    "callId": "c", "url": "/v1/responses", "headers": {"X-Request-Id": "req-7"}, "body": {"model": "m", "input": "hi"}}}


class Outbox:
    """Keeps what the session sends; `full` makes every put time out as a stalled host's would."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.full = False
        self.abandoned = False

    def put(self, text: str) -> None:
        if self.full:
            raise SendOverflow("stalled")
        self.sent.append(json.loads(text))

    def abandon(self) -> None:
        self.abandoned = True


class Services:
    settings = Settings(skip_llm_ready_check=True)
    keyring = KeyRing()


def test_a_call_that_arrives_while_the_gateway_stops_is_answered_503_without_running():
    outbox = Outbox()
    session = RpcSession(Services(), outbox, route="test")
    session.refuse_new_calls(shutting_down())
    session.handle(json.dumps(CALL))
    [answer] = outbox.sent
    assert answer == {"id": 5, "result": {"status": 503, "requestId": "req-7", "error": shutting_down().message}}
    assert not session.busy


def test_a_host_that_stopped_reading_breaks_the_session_once():
    outbox, broken = Outbox(), []
    session = RpcSession(Services(), outbox, route="test", on_broken=lambda: broken.append(True))
    outbox.full = True
    with pytest.raises(HostGone):
        session.handle('{"id": 1, "method": "initialize"}')
    outbox.full = False
    with pytest.raises(HostGone):      # nothing is sent on a broken session any more
        session.handle('{"id": 2, "method": "initialize"}')
    assert broken == [True] and outbox.abandoned and outbox.sent == []
