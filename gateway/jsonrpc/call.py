"""One `responsesApi/call`: the host's Responses request, run by the same engine as HTTP, its events
sent as `responsesApi/event` notifications, then the answer `{status, requestId, error?}`.

The status is the one the same HTTP call would have had: a call refused before its first event
(bad url, key or body, an upstream that refused it) answers with that 4xx/5xx and sends no event;
once events flowed the answer is 200, with `error` set when the stream ended in `response.failed`.
"""
from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from werkzeug.datastructures import Headers

from gateway.access import AccessRecord, request_id_from
from gateway.errors import APIError, invalid_request

if TYPE_CHECKING:
    from gateway.engine import Engine, Turn
    from gateway.jsonrpc.session import RpcSession

log = logging.getLogger(__name__)


class HostGone(Exception):
    """The connection to the host is closed or broken: nothing more can be sent on it."""


def check_url(url: str) -> None:
    """The host names the API it meant; this peer serves only `POST …/responses`."""
    try:
        path = urlsplit(url).path
    except ValueError:
        path = ""
    if not path.endswith("/responses"):
        raise APIError(404, f"This peer serves only the Responses API (a url ending in /responses), not {url!r}.",
                       param="url", code="unknown_url")


class ResponsesCall(threading.Thread):
    def __init__(self, session: "RpcSession", msg_id: Any, params: dict[str, Any]) -> None:
        super().__init__(name=f"jsonrpc-call-{params['call_id'][:32]}", daemon=True)
        self.session, self.msg_id, self.params = session, msg_id, params
        self.call_id: str = params["call_id"]
        self.headers = Headers(params["headers"])
        self.access = AccessRecord(route=session.route, method="RPC",
                                   request_id=request_id_from(self.headers.get("x-request-id")))
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._turn: Turn | None = None
        self._stop_request: tuple[APIError, bool] | None = None      # (error, cancel) once asked to stop

    def run(self) -> None:
        status, error = 499, None
        try:
            status, error = self._run()
        except APIError as exc:
            status, error = exc.status, exc.message
        except HostGone:
            pass
        except Exception:  # a bug must still answer the call
            log.exception("jsonrpc call %s crashed", self.call_id)
            status, error = 500, "The gateway failed while serving this call."
        finally:
            self.access.finish(status)
            self.session.finished(self, status, error)

    def stop(self, error: APIError, cancel: bool) -> None:
        """From another thread: end the call now. `cancel` (the host went away): the response ends
        incomplete, as for an HTTP client that left; otherwise it fails with `error`."""
        with self._lock:
            self._stop_request = (error, cancel)
        self._apply_stop()

    def _apply_stop(self) -> None:
        with self._lock:
            stop, engine, turn = self._stop_request, self._engine, self._turn
        if stop is None or turn is None or engine is None:
            return
        error, cancel = stop
        if cancel:
            engine.cancel(turn, error)
        else:
            engine.abort(turn, error)

    def _run(self) -> tuple[int, str | None]:
        check_url(self.params["url"])
        tenant = self.session.authenticate(self.headers)
        self.access.tenant = tenant
        engine = self.session.services.scope(tenant).engine
        turn = engine.prepare(self.params["body"], headers=dict(self.headers))
        if turn.request["background"]:
            raise invalid_request("background mode is not available over JSON-RPC: the host follows each "
                                  "call's events itself.", param="background")
        self.access.turn = turn
        with self._lock:
            if self._stop_request is not None:
                raise self._stop_request[0]
            self._engine, self._turn = engine, turn
        batches = engine.stream_batches(turn)
        try:
            opening = next(batches)
            if turn.refused is not None:
                for _ in batches:   # ends (and stores) the response as the non-streaming HTTP call does
                    pass
                raise turn.refused
            self._apply_stop()      # asked to stop while the upstream request was being opened
            self._send(opening)
            for batch in batches:
                self._send(batch)
        finally:
            batches.close()
        if turn.cancelled is not None:
            return 499, turn.cancelled.message
        return 200, turn.error.message if turn.error is not None else None

    def _send(self, batch: list[dict[str, Any]]) -> None:
        for event in batch:
            self.session.send_event(self.call_id, event)
