"""The only code that talks HTTP to the model server.

A shared `requests.Session` (its adapter, gateway/transport.py, pools kept-alive connections
across a worker's threads), timeouts from settings, SSE parsing with sseclient-py, and the mapping
of every transport failure to an `APIError`: refused → 502, timeout → 504, HTTP errors by status,
mid-stream errors, drops and stalls → `server_error`.
"""
from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import time
from typing import Any, Iterator

import requests
import urllib3.exceptions
from requests.adapters import BaseAdapter, HTTPAdapter
from urllib3.util.retry import Retry
from sseclient import SSEClient

from gateway import arrivals
from gateway.config import Settings
from gateway.errors import APIError, from_stream_error, from_upstream_status, server_error
from gateway.transport import HTTPClientAdapter, needs_proxy

log = logging.getLogger(__name__)

_READ_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)


def _connect_error(base: str, exc: Exception) -> APIError:
    if isinstance(exc, (requests.Timeout, urllib3.exceptions.TimeoutError)):
        return server_error(504, f"Upstream model server at {base} timed out ({exc.__class__.__name__}).")
    if isinstance(exc, requests.exceptions.SSLError):
        return server_error(502, f"TLS with the upstream model server at {base} failed; if it uses a "
                                 "private CA, point REQUESTS_CA_BUNDLE at its certificate.")
    return server_error(502, f"Could not connect to the upstream model server at {base}.")


class ChatStream:
    """An open upstream `chat/completions` stream, read as parsed chunk dicts through
    `with_lookahead()`.

    Reading raises `APIError` for a mid-stream error object, a dropped connection, a read
    timeout (stall) or a body that is not SSE JSON. `close()` is idempotent and must be called
    in a `finally` so the pooled connection is released even when the client went away.
    """

    def __init__(self, response: requests.Response, base: str) -> None:
        self._response = response
        self._base = base
        self._finished = False

    def _http_response(self) -> Any:
        """http.client's response, read directly when the body is not content-encoded. Under the
        gateway's own adapter it is `raw.http_response`; under urllib3's (proxied upstreams) it is
        private (`_fp`), which wraps every read in its own bookkeeping. If that moves, or the body
        is encoded, this is None and reading goes through `raw`, which decodes."""
        encoding = self._response.headers.get("Content-Encoding", "identity").strip().lower()
        raw = self._response.raw
        source = getattr(raw, "http_response", None) or getattr(raw, "_fp", None)
        return source if encoding == "identity" and hasattr(source, "read1") else None

    def _arrivals(self) -> Iterator[bytes]:
        """The body as it arrives: each piece is everything one read of the connection brought."""
        http_response = self._http_response()
        if http_response is None:
            yield from arrivals.plain(self._response.raw)
        elif getattr(http_response, "chunked", False) and hasattr(http_response.fp, "read1"):
            yield from arrivals.dechunked(http_response.fp)
            http_response.close()  # read to its end: the connection can serve the next request
        else:
            yield from arrivals.plain(http_response)

    def answer_waiting(self) -> bool:
        """Before reading: whether a complete event has already arrived, so the client's first write
        can carry it along with `response.created`.

        Looks at the connection's read buffer (refilled by one read of the socket when empty),
        without blocking or consuming: the socket is non-blocking meanwhile. urllib3 keeps that
        buffer private (`_fp.fp`); if it moves, or the socket is not a plain socket (TLS inside an
        HTTPS proxy tunnel runs on urllib3's SSLTransport), the answer is False."""
        buffer = getattr(self._http_response(), "fp", None)
        sock = getattr(getattr(self._response.raw, "connection", None), "sock", None)
        if not isinstance(sock, socket.socket) or not hasattr(buffer, "peek"):
            return False
        timeout = sock.gettimeout()
        sock.settimeout(0.0)
        try:
            return arrivals.holds_event(buffer.peek(1))
        except OSError:
            return False
        finally:
            sock.settimeout(timeout)

    def with_lookahead(self) -> Iterator[tuple[dict[str, Any], bool]]:
        """Each chunk with whether the next event had already arrived behind it: chunks that
        arrived together can be answered with one write instead of one per chunk."""
        pieces = self._arrivals()
        counter = arrivals.ArrivalCounter()
        try:
            for event in SSEClient(counter.track(pieces)).events():
                counter.took_one()
                if event.data.strip() == "[DONE]":
                    self._finished = self._read_to_end(pieces)
                    return
                try:
                    chunk = arrivals.parse_chunk(event.data)
                except json.JSONDecodeError as exc:
                    raise server_error(502, "Upstream sent a malformed stream chunk.") from exc
                if isinstance(chunk, dict) and "error" in chunk and "choices" not in chunk:
                    raise from_stream_error(chunk)
                yield chunk, counter.more
        except APIError:
            raise
        except arrivals.MalformedChunk as exc:
            raise server_error(502, f"Upstream model server sent a malformed chunked body ({exc}).") from exc
        except _READ_ERRORS as exc:
            if isinstance(exc, (requests.Timeout, urllib3.exceptions.TimeoutError)) or "timed out" in str(exc):
                raise server_error(504, "Upstream model server stalled: no data within the read timeout.") from exc
            raise server_error(502, "Upstream model server closed the stream unexpectedly.") from exc

    @staticmethod
    def _read_to_end(pieces: Iterator[bytes]) -> bool:
        """After `[DONE]`: read what is left of the body (its last chunk usually came with it), so
        the connection can be reused; False when that fails and the connection must be dropped."""
        try:
            for _ in pieces:
                pass
            return True
        except _READ_ERRORS:
            return False

    def close(self) -> None:
        """Return the connection to the pool after a clean `[DONE]`; drop it otherwise."""
        if self._finished:
            try:
                self._response.raw.drain_conn()
                self._response.raw.release_conn()
                return
            except _READ_ERRORS:
                pass
        self._response.close()


class UpstreamClient:
    def __init__(self, settings: Settings) -> None:
        self.base = settings.llm_api_base
        self.root = self.base[: -len("/v1")]
        self.timeout = settings.upstream_timeout_s
        self.session = requests.Session()
        self.session.headers["Content-Type"] = "application/json"
        if settings.llm_api_key:
            self.session.headers["Authorization"] = f"Bearer {settings.llm_api_key}"
        # Proxy and TLS settings (HTTPS_PROXY, REQUESTS_CA_BUNDLE, ...) are read from the
        # environment once, not on every call (Session.request re-reads os.environ and ~/.netrc
        # each time, which costs more than the rest of the call).
        env = self.session.merge_environment_settings(self.base, {}, None, None, None)
        self.proxies, self.cert = env["proxies"], env["cert"]
        # A CA bundle only matters over TLS; requests stats its path on every call that gets one.
        self.verify = env["verify"] if self.base.startswith("https:") else True
        self.adapter = self._adapter()
        self.session.mount("http://", self.adapter)
        self.session.mount("https://", self.adapter)
        # The chat POST is prepared once (URL parsing, header validation); each call sets only the
        # body. The gateway's transport adds Content-Length itself, so its calls share the headers,
        # which nothing changes afterwards; urllib3 would send the body chunked without it.
        self._chat_template = requests.PreparedRequest()
        self._chat_template.prepare(method="POST", url=f"{self.base}/chat/completions",
                                    headers=dict(self.session.headers))
        self._chat_template.headers.pop("Content-Length", None)  # prepared without a body: "0"
        self._health_lock = threading.Lock()
        self._health_cache: tuple[float, bool] = (0.0, False)

    def _adapter(self) -> BaseAdapter:
        """http.client directly (gateway/transport.py), or requests' urllib3 adapter when the upstream
        is reached through a proxy. There, one retry covers connections that fail before the
        request is sent; a request the upstream has received is never resent."""
        if not needs_proxy(self.base, self.proxies):
            return HTTPClientAdapter(pool_maxsize=256)
        retry = Retry(total=1, connect=1, read=0, redirect=0, status=0, other=0)
        return HTTPAdapter(pool_connections=4, pool_maxsize=256, max_retries=retry)

    def open_chat_stream(self, body: bytes | dict[str, Any]) -> ChatStream:
        """POST the chat request (encoded body or payload); returns once the upstream answered 200."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
        prepared = requests.PreparedRequest()
        prepared.method, prepared.url = "POST", self._chat_template.url
        prepared.headers, prepared.body = self._chat_template.headers, data
        if not isinstance(self.adapter, HTTPClientAdapter):
            prepared.headers = prepared.headers.copy()
            prepared.headers["Content-Length"] = str(len(data))
        try:
            resp = self.adapter.send(prepared, stream=True, timeout=self.timeout, verify=self.verify,
                                     cert=self.cert, proxies=self.proxies)
        except requests.RequestException as exc:
            raise _connect_error(self.base, exc) from exc
        if resp.status_code != 200:
            try:
                body: Any = resp.json()
            except ValueError:
                body = resp.text
            finally:
                resp.close()
            log.warning("upstream answered %s: %s", resp.status_code, str(body)[:300])
            raise from_upstream_status(resp.status_code, body, resp.headers)
        return ChatStream(resp, self.base)

    def list_models(self) -> list[dict[str, Any]]:
        try:
            resp = self.session.get(f"{self.base}/models", timeout=self.timeout)
        except requests.RequestException as exc:
            raise _connect_error(self.base, exc) from exc
        with resp:
            if resp.status_code != 200:
                raise from_upstream_status(resp.status_code, resp.text, resp.headers)
            try:
                data = resp.json().get("data", [])
            except (ValueError, AttributeError) as exc:
                raise server_error(502, "Upstream /models answered with a body that is not a model list.") from exc
        return [m for m in data if isinstance(m, dict) and m.get("id")]

    def is_healthy(self, max_age_s: float = 1.0) -> bool:
        """Probe `GET {root}/health`, cached briefly so a flood of /ready calls costs one probe."""
        with self._health_lock:
            checked_at, healthy = self._health_cache
            if time.monotonic() - checked_at < max_age_s:
                return healthy
            try:
                resp = self.session.get(f"{self.root}/health", timeout=(self.timeout[0], 5.0))
                healthy = resp.status_code == 200
                resp.close()
            except requests.RequestException:
                healthy = False
            self._health_cache = (time.monotonic(), healthy)
            return healthy

    def wait_until_healthy(self, timeout_s: float, interval_s: float = 1.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while True:
            if self.is_healthy(max_age_s=0):
                return True
            if time.monotonic() >= deadline:
                return False
            log.info("waiting for upstream %s/health ...", self.root)
            time.sleep(interval_s)
