"""The two buffers of a Responses WebSocket connection, both bounded.

`Outbox`: frames waiting for the socket, bounded in bytes; a writer thread sends them in order, and
a client that stops reading fills it until the send deadline drops the connection.

`Inbox`: frames the client sent that wait behind the running response (simple-websocket's reader
thread keeps reading while the session works). It replaces the connection's `input_buffer`, which
simple-websocket appends to and pops from; past its bound in frames or bytes a frame is dropped and
the client told so, instead of the worker's memory growing with whatever a client sends.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Callable, SupportsIndex


class SendOverflow(Exception):
    """The client stopped reading: the outbox stayed full past the send deadline."""


class Outbox:
    """Frames waiting for the socket, bounded in bytes; a writer thread sends them in order."""

    def __init__(self, ws: Any, max_bytes: int, timeout_s: float) -> None:
        self.ws, self.max_bytes, self.timeout_s = ws, max_bytes, timeout_s
        self._frames: deque[str] = deque()
        self._bytes = 0
        self._cond = threading.Condition()
        self._closing = False
        self.broken = False
        self._thread = threading.Thread(target=self._drain, name="ws-writer", daemon=True)
        self._thread.start()

    def put(self, frame: str) -> None:
        size = len(frame)
        with self._cond:
            deadline = time.monotonic() + self.timeout_s
            while self._frames and self._bytes + size > self.max_bytes and not self.broken:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SendOverflow(f"{self._bytes} bytes unsent for {self.timeout_s}s")
                self._cond.wait(remaining)
            if self.broken:
                raise ConnectionError("websocket closed")
            self._frames.append(frame)
            self._bytes += size
            self._cond.notify_all()

    def _drain(self) -> None:
        while True:
            with self._cond:
                while not self._frames and not self._closing and not self.broken:
                    self._cond.wait()
                if not self._frames:
                    return
                frame = self._frames[0]
            try:
                self.ws.send(frame)
            except Exception:  # the peer went away or the socket was shut down
                with self._cond:
                    self.broken = True
                    self._frames.clear()
                    self._cond.notify_all()
                return
            with self._cond:
                if self._frames and self._frames[0] is frame:    # else abandoned meanwhile
                    self._frames.popleft()
                    self._bytes -= len(frame)
                self._cond.notify_all()

    def abandon(self) -> None:
        """The peer stopped reading: drop what waits, and fail every later `put` at once."""
        with self._cond:
            self.broken = True
            self._frames.clear()
            self._bytes = 0
            self._cond.notify_all()

    def close(self, wait_s: float) -> None:
        """Let queued frames go out (bounded wait), then stop the writer."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(wait_s)


class Inbox(list):
    def __init__(self, max_frames: int, max_bytes: int) -> None:
        super().__init__()
        self.max_frames, self.max_bytes = max_frames, max_bytes
        self.on_refused: Callable[[], None] = lambda: None     # set by the session
        self.bytes = 0
        self._lock = threading.Lock()

    def append(self, frame: Any) -> None:
        size = len(frame)
        with self._lock:
            refused = len(self) >= self.max_frames or (len(self) and self.bytes + size > self.max_bytes)
            if not refused:
                super().append(frame)
                self.bytes += size
        if refused:
            self.on_refused()

    def pop(self, index: SupportsIndex = -1) -> Any:
        with self._lock:
            frame = super().pop(index)
            self.bytes -= len(frame)
            return frame


def inbox_reader(max_frames: int, max_bytes: int) -> Callable[..., threading.Thread]:
    """simple-websocket's `thread_class` option: gives the connection its `Inbox` before its reader
    thread starts, so no frame is ever read into an unbounded buffer."""

    def reader(target: Callable[[], None]) -> threading.Thread:
        connection = getattr(target, "__self__")     # the connection (the reader is its bound method)
        connection.input_buffer = Inbox(max_frames, max_bytes)
        return threading.Thread(target=target, daemon=True)

    return reader
