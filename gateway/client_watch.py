"""Noticing that the client of a non-streaming request went away while the model still works.

A streaming client that leaves is noticed by the next write; a non-streaming one only would be
once the whole answer was written, after the model spent its time for nobody. One thread per
process watches the sockets of the non-streaming requests in flight (epoll via `selectors`) and
calls back when a peer closed its side, so the engine can stop the upstream at once.
"""
from __future__ import annotations

import selectors
import socket
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

# Where WSGI servers put the client's socket: gunicorn, and werkzeug's development server.
_SOCKET_KEYS = ("gunicorn.socket", "werkzeug.socket")


class ClientWatch:
    def __init__(self, poll_s: float = 0.25) -> None:
        self.poll_s = poll_s
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @contextmanager
    def watching(self, environ: dict[str, Any], on_gone: Callable[[], None]) -> Iterator[None]:
        """Call `on_gone` (once, from the watcher thread) if the client closes while inside."""
        sock = next((environ[key] for key in _SOCKET_KEYS if isinstance(environ.get(key), socket.socket)), None)
        if sock is None:
            yield
            return
        with self._lock:
            self._selector.register(sock, selectors.EVENT_READ, on_gone)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="client-watch", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            self._forget(sock)

    def _forget(self, sock: Any) -> None:
        with self._lock:
            try:
                self._selector.unregister(sock)
            except (KeyError, ValueError):
                pass

    def _run(self) -> None:
        while True:
            for key, _ in self._selector.select(self.poll_s):
                # Readable: the peer closed, or sent more (a pipelined request, not a departure);
                # either way this request is watched no longer.
                self._forget(key.fileobj)
                if self._closed(key.fileobj):
                    key.data()

    @staticmethod
    def _closed(sock: Any) -> bool:
        try:
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True


CLIENT_WATCH = ClientWatch()
