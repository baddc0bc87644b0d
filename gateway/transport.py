"""The upstream calls' transport: a requests adapter that sends over the standard library's
http.client and keeps its own pool of kept-alive connections.

Why: the streaming chat call is the gateway's hottest path, and requests' own `HTTPAdapter` sends
it through urllib3's pool, retry, timeout and response layers on top of http.client: 0.4 M of the
≈ 6 M instructions the gateway spends on a streamed response (docs/benchmarks.md). urllib3 itself
sends with http.client; this adapter only leaves out the layers in between. Everything
requests provides around the call stays: the Session and its headers, PreparedRequest, Response,
the exception classes (so error mapping is unchanged), and `responses` mocks it through
`RequestsMock(target=...)`. Upstreams behind a proxy keep requests' own adapter (`needs_proxy`):
the tunnel and proxy authentication are urllib3's.
"""
from __future__ import annotations

import http.client
import os
import select
import socket
import ssl
import threading
import zlib
from collections import deque
from typing import Any
from urllib.parse import SplitResult, urlsplit

import requests
from requests.adapters import BaseAdapter, HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import DEFAULT_CA_BUNDLE_PATH, get_encoding_from_headers, select_proxy
from urllib3.util.retry import Retry

_CONNECT_ERRORS = (OSError, http.client.HTTPException)
_MAX_CACHED_URLS = 64


def needs_proxy(url: str, proxies: dict[str, str] | None) -> bool:
    """Whether requests would send `url` through a proxy (NO_PROXY already applied to `proxies`)."""
    return bool(proxies) and select_proxy(url, proxies) is not None


class PooledResponse:
    """`requests.Response.raw` for this adapter: http.client's response and the connection it came
    on. The connection goes back to the pool only once the body has been read to its end."""

    def __init__(self, http_response: http.client.HTTPResponse, connection: http.client.HTTPConnection,
                 pool: deque) -> None:
        self.http_response = http_response
        self.connection = connection
        self._pool = pool
        self._done = False
        encoding = (http_response.getheader("Content-Encoding") or "identity").strip().lower()
        # gzip or zlib-wrapped deflate, decoded as requests would (vLLM answers uncompressed; a
        # proxy or hosted endpoint in front of it may not).
        self._decoder = zlib.decompressobj(32 + zlib.MAX_WBITS) if encoding in ("gzip", "deflate") else None

    def read(self, amt: int | None = None) -> bytes:
        return self._decoded(self.http_response.read(amt))

    def read1(self, size: int = -1) -> bytes:
        return self._decoded(self.http_response.read1(size))

    def _decoded(self, data: bytes) -> bytes:
        if self.http_response.isclosed():
            self.release_conn()  # the body ended: as urllib3 does, the connection is free again
        if self._decoder is None:
            return data
        return self._decoder.decompress(data) if data else self._decoder.flush()

    def drain_conn(self) -> None:
        """Read what is left of the body, so that the connection can be reused."""
        try:
            self.http_response.read()
        except _CONNECT_ERRORS:
            self.close()

    def release_conn(self) -> None:
        """Back to the pool when the body was read to its end and the upstream keeps the connection
        open; closed otherwise. Idempotent."""
        if self._done:
            return
        pool = self._pool
        if self.http_response.isclosed() and not self.http_response.will_close and len(pool) < pool.maxlen:
            self._done = True
            pool.append(self.connection)
        else:
            self.close()  # also when the pool is full: a deque at its maxlen would drop one unclosed

    def close(self) -> None:
        if not self._done:
            self._done = True
            self.http_response.close()
            self.connection.close()


class HTTPClientAdapter(BaseAdapter):
    """requests' transport adapter interface over http.client, one pool of idle connections per
    (scheme, host, port, TLS settings). A pooled connection the upstream has closed meanwhile is
    noticed before reuse (it polls readable) and replaced. Connect and read timeouts as requests
    applies them; failures raise requests' exceptions."""

    def __init__(self, pool_maxsize: int = 256) -> None:
        super().__init__()
        self.pool_maxsize = pool_maxsize
        self._pools: dict[tuple, deque] = {}
        self._contexts: dict[tuple, ssl.SSLContext] = {}
        self._urls: dict[str, tuple[SplitResult, str]] = {}
        self._lock = threading.Lock()

    # -- requests' adapter interface ------------------------------------------------------------
    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: bool | str = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        connect_timeout, read_timeout = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        url, target = self._split(request.url)
        key = (url.scheme, url.hostname, url.port, verify if url.scheme == "https" else None, _cert_key(cert))
        pool = self._pool(key)
        connection = self._idle_connection(pool)
        if connection is None:
            connection = self._connect(url, key, connect_timeout, read_timeout)
        elif connection.sock.gettimeout() != read_timeout:
            connection.sock.settimeout(read_timeout)
        try:
            connection.request(request.method, target, body=request.body, headers=request.headers)
            http_response = connection.getresponse()
        except _CONNECT_ERRORS as exc:
            connection.close()
            if isinstance(exc, TimeoutError) or "timed out" in str(exc):
                raise requests.ReadTimeout(exc, request=request) from exc
            raise requests.ConnectionError(exc, request=request) from exc
        response = self._build_response(request, http_response, PooledResponse(http_response, connection, pool))
        if not stream:
            response.content  # noqa: B018 - reads the body, which releases the connection
        return response

    # What `responses` (tests) uses of an adapter whose `send` it mocks, as requests' own adapter has
    # them: no retries, and a Response built from a urllib3-style response.
    max_retries = Retry(0, read=False)

    def build_response(self, request: requests.PreparedRequest, resp: Any) -> requests.Response:
        return HTTPAdapter.build_response(self, request, resp)  # type: ignore[arg-type]

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            while pool:
                pool.pop().close()

    # -- connections ------------------------------------------------------------------------------
    def _split(self, url: str) -> tuple[SplitResult, str]:
        """The URL's parts and its request target, worked out once per URL (a few are ever used)."""
        parts = self._urls.get(url)
        if parts is None:
            split = urlsplit(url)
            parts = split, (split.path or "/") + (f"?{split.query}" if split.query else "")
            if len(self._urls) < _MAX_CACHED_URLS:
                self._urls[url] = parts
        return parts

    def _pool(self, key: tuple) -> deque:
        pool = self._pools.get(key)
        if pool is None:
            with self._lock:
                pool = self._pools.setdefault(key, deque(maxlen=self.pool_maxsize))
        return pool

    @staticmethod
    def _idle_connection(pool: deque) -> http.client.HTTPConnection | None:
        """The most recently used idle connection the upstream has not closed meanwhile."""
        while True:
            try:
                connection = pool.pop()
            except IndexError:
                return None
            if connection.sock is not None and not _readable(connection.sock):
                return connection
            connection.close()  # closed by the upstream (EOF waiting) or out of step (stray bytes)

    def _connect(self, url: SplitResult, key: tuple, connect_timeout: float | None,
                 read_timeout: float | None) -> http.client.HTTPConnection:
        port = url.port or (443 if url.scheme == "https" else 80)
        if url.scheme == "https":
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                url.hostname, port, timeout=connect_timeout, context=self._context(key[3], key[4]))
        else:
            connection = http.client.HTTPConnection(url.hostname, port, timeout=connect_timeout)
        try:
            connection.connect()
        except ssl.SSLError as exc:
            connection.close()
            raise requests.exceptions.SSLError(exc) from exc
        except OSError as exc:
            connection.close()
            if isinstance(exc, TimeoutError):
                raise requests.ConnectTimeout(exc) from exc
            raise requests.ConnectionError(exc) from exc
        connection.sock.settimeout(read_timeout)  # http.client has set TCP_NODELAY
        return connection

    def _context(self, verify: bool | str, cert: tuple | None) -> ssl.SSLContext:
        """One TLS context per (verify, cert), trusting what requests would: its CA bundle by
        default, REQUESTS_CA_BUNDLE's file or directory when set, nothing checked for False. Files
        that will not load are an SSLError, so the gateway answers with its TLS 502."""
        context = self._contexts.get((verify, cert))
        if context is None:
            try:
                context = self._new_context(verify, cert)
            except OSError as exc:  # ssl.SSLError is an OSError too
                raise requests.exceptions.SSLError(f"TLS files {verify!r}, {cert!r} did not load: {exc}") from exc
            self._contexts[(verify, cert)] = context
        return context

    @staticmethod
    def _new_context(verify: bool | str, cert: tuple | None) -> ssl.SSLContext:
        if verify is False:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif isinstance(verify, str) and os.path.isdir(verify):
            context = ssl.create_default_context(capath=verify)
        else:
            context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else DEFAULT_CA_BUNDLE_PATH)
        if cert:
            context.load_cert_chain(*cert)
        return context

    def _build_response(self, request: requests.PreparedRequest, http_response: http.client.HTTPResponse,
                        raw: PooledResponse) -> requests.Response:
        response = requests.Response()
        response.status_code = http_response.status
        response.reason = http_response.reason
        response.headers = CaseInsensitiveDict(http_response.getheaders())
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = raw
        response.url = request.url
        response.request = request
        response.connection = self
        return response


def _cert_key(cert: Any) -> tuple | None:
    if not cert:
        return None
    return tuple(cert) if isinstance(cert, (tuple, list)) else (cert,)


def _readable(sock: socket.socket) -> bool:
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))
