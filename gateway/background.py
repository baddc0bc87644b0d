"""Background responses (`background: true`, responses-api.md §6.7).

`launch()` records the response as queued (naming this worker, so it is marked failed should the
worker die), logs `response.queued` and runs the turn on a thread of its own, independent of any
client connection: every event goes to the response's event log in the database. Clients read the
log, not the run: `follow()` replays the events after a sequence number and follows new ones to
the terminal event, from any worker or instance sharing the database. A cancel request sets a flag
in the database; the worker running the response polls for it four times a second and ends the
upstream stream, so the response ends `cancelled` wherever the request was made.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Iterator

from gateway.engine import CANCELLED_CODE
from gateway.errors import APIError
from gateway.translate.resource import snapshot
from storage import background as stored_runs

if TYPE_CHECKING:
    from gateway.engine import Engine
    from gateway.turn import Turn

log = logging.getLogger(__name__)
TERMINAL = ("response.completed", "response.incomplete", "response.failed")
IN_PROGRESS = ("queued", "in_progress")
CANCELLED = APIError(499, "The response was cancelled.", type="server_error", code=CANCELLED_CODE)
POLL_S = 0.25


class BackgroundRuns:
    """The background responses this process runs, and wake-ups for the clients following them."""

    def __init__(self) -> None:
        self._runs: dict[str, tuple["Engine", "Turn"]] = {}
        self._changed = threading.Condition()
        self._poller: threading.Thread | None = None

    def launch(self, engine: "Engine", turn: "Turn") -> dict[str, Any]:
        """Record, log and start the response; returns its `response.queued` event."""
        limit = engine.settings.background_max_runs
        if len(self._runs) >= limit:
            raise APIError(429, f"This gateway worker already runs {limit} background responses "
                                "(BACKGROUND_MAX_RUNS); retry once some have finished.", type="rate_limit_error",
                           code="rate_limit_exceeded", headers={"Retry-After": "1"})
        response = turn.response
        response["status"] = "queued"
        error = engine.record_start(turn)
        if error is not None:
            raise error
        queued = {"type": "response.queued", "sequence_number": 0, "response": snapshot(response)}
        engine.repository.log_events(response["id"], [queued])
        with self._changed:
            self._runs[response["id"]] = (engine, turn)
            if self._poller is None:
                self._poller = threading.Thread(target=self._poll_cancels, name="background-cancels", daemon=True)
                self._poller.start()
        threading.Thread(target=self._run, args=(engine, turn), name=f"background-{response['id'][-8:]}",
                         daemon=True).start()
        return queued

    def _run(self, engine: "Engine", turn: "Turn") -> None:
        response_id = turn.response["id"]
        try:
            turn.response["status"] = "in_progress"
            engine.repository.mark_running(snapshot(turn.response))
            batches = engine.stream_batches(turn)
            for batch in batches:
                self._log(engine, response_id, batch)
        except Exception:  # the stream itself never raises; storage might
            log.exception("background response %s could not be logged", response_id)
        finally:
            with self._changed:
                self._runs.pop(response_id, None)
                self._changed.notify_all()

    def _log(self, engine: "Engine", response_id: str, events: list[dict[str, Any]]) -> None:
        try:
            engine.repository.log_events(response_id, events)
        except Exception:
            log.exception("could not log events of background response %s", response_id)
        with self._changed:
            self._changed.notify_all()

    def cancel_here(self, response_id: str) -> None:
        """End the response now if this process runs it (others notice the database flag)."""
        run = self._runs.get(response_id)
        if run is not None:
            run[0].cancel(run[1], CANCELLED)

    def _poll_cancels(self) -> None:
        while True:
            time.sleep(POLL_S)
            runs = dict(self._runs)
            try:
                flagged = stored_runs.cancel_requested(list(runs))
            except Exception as exc:  # storage away: try again next round
                log.warning("could not poll for cancel requests: %s", exc.__class__.__name__)
                continue
            for response_id in flagged:     # again each round until the run has ended: the
                engine, turn = runs[response_id]    # upstream may not have been open yet
                engine.cancel(turn, CANCELLED)

    def wait(self, timeout_s: float) -> None:
        """Until something was logged in this process (or the timeout: other processes' runs)."""
        with self._changed:
            self._changed.wait(timeout_s)


RUNS = BackgroundRuns()


def follow(records: Any, response_id: str, after: int) -> Iterator[list[dict[str, Any]]]:
    """The logged events after `after`, then new ones as they are logged, to the terminal event."""
    finished_at = None
    while True:
        events = records.logged_events(response_id, after)
        if events:
            yield events
            after = events[-1]["sequence_number"]
            if events[-1]["type"] in TERMINAL:
                return
            continue
        response = records.get_response(response_id)
        if response is None:
            return
        if response.get("status") not in IN_PROGRESS:
            # Stored before its terminal event is logged: give the log a moment, then stop.
            finished_at = finished_at or time.monotonic()
            if time.monotonic() - finished_at > 5:
                return
        RUNS.wait(POLL_S)


def cancel(records: Any, response_id: str, wait_s: float = 5.0) -> dict[str, Any] | None:
    """Cancel a background response; its state once it ended (or after `wait_s`). A finished one
    is returned unchanged; None when the tenant has no such response."""
    response = records.get_response(response_id)
    if response is None:
        return None
    if not response.get("background"):
        raise APIError(400, "Only background responses can be cancelled.", param="response_id",
                       code="not_background")
    if response.get("status") not in IN_PROGRESS or not records.request_cancel(response_id):
        return records.get_response(response_id)
    RUNS.cancel_here(response_id)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        response = records.get_response(response_id)
        if response is None or response.get("status") not in IN_PROGRESS:
            return response
        RUNS.wait(0.05)
    return response
