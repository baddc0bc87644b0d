"""The only code that talks HTTP to the model server: one `requests.Session` per process.

Streams are read with requests (`iter_content(chunk_size=None)`: each piece as it arrives) and
parsed by sseclient-py; every failure goes through gateway/upstream/failures.py. The session
reads the proxy and CA environment (`HTTPS_PROXY`, `NO_PROXY`, `REQUESTS_CA_BUNDLE`, …) once at
start-up and then stops looking (`trust_env = False`), because `Session.request` would otherwise
re-read the environment and `~/.netrc` on every call.
"""
from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import time
from typing import Any, Iterator, Mapping

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from sseclient import SSEClient
from urllib3.util.retry import Retry

from gateway.config import Settings
from gateway.errors import APIError
from gateway.upstream import failures

log = logging.getLogger(__name__)

_READ_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)
# Headers the proxy path does not pass on: those of one hop (RFC 9110 §7.6.1), the client's key
# (the upstream's own replaces it), and what the session sets itself (it decodes only the content
# encodings requests knows, so it asks for those).
NOT_FORWARDED = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                        "trailer", "transfer-encoding", "upgrade", "host", "content-length", "authorization",
                        "accept-encoding", "content-type", "cookie"})


def forwardable(headers: Mapping[str, str]) -> dict[str, str]:
    """A client's request headers as the proxy path passes them upstream."""
    return {name: value for name, value in headers.items() if name.lower() not in NOT_FORWARDED}


def _route_missing(status: int, answer: Any) -> bool:
    """The upstream has no such endpoint: 405, or a bare 404 "Not Found" (FastAPI's, which vLLM
    also wraps in its error shape), as opposed to a 404 about the model."""
    return status == 405 or (status == 404 and failures.upstream_message(answer).strip().lower() in ("", "not found"))


class UpstreamStream:
    """An open upstream SSE stream. `payloads()` yields each event's JSON; `abort()` ends it from
    another thread; `close()` (idempotent, always in a `finally`) returns the connection to the
    pool once the body was read to its end."""

    def __init__(self, response: requests.Response) -> None:
        self._response = response
        self._aborted: APIError | None = None

    def payloads(self) -> Iterator[Any]:
        pieces = self._response.iter_content(chunk_size=None)
        try:
            for event in SSEClient(pieces).events():
                if self._aborted is not None:
                    raise self._aborted
                data = event.data
                if data.strip() == "[DONE]":  # chat's end marker; Responses streams just end
                    for _ in pieces:  # the rest of the body (its last chunk), so the connection is reusable
                        pass
                    return
                try:
                    yield json.loads(data)
                except ValueError as exc:
                    raise failures.malformed("stream event (not JSON)") from exc
        except APIError:
            raise
        except _READ_ERRORS as exc:
            raise (self._aborted or failures.from_read(exc)) from exc
        if self._aborted is not None:
            raise self._aborted

    def abort(self, error: APIError) -> None:
        """From another thread: end the stream now with `error` (shutdown, a client gone). Shutting the
        socket down wakes a read blocked on it at once, which closing the response would not."""
        self._aborted = error
        connection = getattr(self._response.raw, "connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
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
        env = self.session.merge_environment_settings(self.base, {}, None, None, None)
        self.session.proxies, self.session.verify, self.session.cert = env["proxies"], env["verify"], env["cert"]
        self.session.trust_env = False
        # One retry covers a connection that fails before the request is sent; a request the
        # upstream has received is never sent twice.
        retry = Retry(total=1, connect=1, read=0, redirect=0, status=0, other=0)
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=256, max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._health_lock = threading.Lock()
        self._health_cache: tuple[float, bool] = (0.0, False)
        self._prepared: dict[str, requests.PreparedRequest] = {}

    def _request(self, path: str, body: bytes, headers: Mapping[str, str] | None) -> requests.PreparedRequest:
        """The POST to `path`, from a copy of one prepared once per path (requests' prepared-request
        API): preparing with the session's settings each time cost a fifth of the client's work."""
        template = self._prepared.get(path)
        if template is None:
            template = self._prepared.setdefault(path, self.session.prepare_request(
                requests.Request("POST", f"{self.base}{path}")))
        prepared = template.copy()
        prepared.prepare_body(body, None)
        if headers:
            prepared.headers.update(headers)
        return prepared

    def _post(self, path: str, body: bytes, headers: Mapping[str, str] | None, stream: bool) -> requests.Response:
        try:
            resp = self.session.send(self._request(path, body, headers), stream=stream, timeout=self.timeout)
        except (requests.RequestException, OSError) as exc:  # OSError: TLS files that will not load
            raise failures.from_connect(self.base, exc) from exc
        if resp.status_code != 200:
            try:
                answer: Any = resp.json()
            except ValueError:
                answer = resp.text
            finally:
                resp.close()
            raise failures.from_status(resp.status_code, answer, resp.headers)
        return resp

    def open_stream(self, path: str, body: bytes, headers: Mapping[str, str] | None = None) -> UpstreamStream:
        """POST a streaming request (`path` under the API base); returns once the upstream answered 200."""
        return UpstreamStream(self._post(path, body, headers, stream=True))

    def list_models(self) -> list[dict[str, Any]]:
        try:
            resp = self.session.get(f"{self.base}/models", timeout=self.timeout)
        except requests.RequestException as exc:
            raise failures.from_connect(self.base, exc) from exc
        with resp:
            if resp.status_code != 200:
                raise failures.from_status(resp.status_code, resp.text, resp.headers)
            try:
                data = resp.json().get("data", [])
            except (ValueError, AttributeError) as exc:
                raise failures.malformed("/models answer (not a model list)") from exc
        return [m for m in data if isinstance(m, dict) and m.get("id")]

    def count_tokens(self, prompt: dict[str, Any]) -> int | None:
        """The prompt's token count by vLLM's `POST /tokenize` (at the server root) for chat
        messages, or None when the upstream offers no such endpoint."""
        body = {**prompt, "add_generation_prompt": True}
        try:
            resp = self.session.post(f"{self.root}/tokenize", data=json.dumps(body), timeout=self.timeout)
        except requests.RequestException as exc:
            raise failures.from_connect(self.base, exc) from exc
        with resp:
            try:
                answer: Any = resp.json()
            except ValueError:
                answer = resp.text
            if _route_missing(resp.status_code, answer):
                return None     # the route itself is missing: a server without a tokenizer endpoint
            if resp.status_code != 200:
                raise failures.from_status(resp.status_code, answer, resp.headers)
        count = answer.get("count") if isinstance(answer, dict) else None
        if not isinstance(count, int) or isinstance(count, bool):
            raise failures.malformed("/tokenize answer (no count)")
        return count

    def is_healthy(self, max_age_s: float = 1.0) -> bool:
        """Probe `GET {root}/health`, cached briefly so a flood of /ready calls costs one probe."""
        with self._health_lock:
            checked_at, healthy = self._health_cache
            if time.monotonic() - checked_at < max_age_s:
                return healthy
            try:
                with self.session.get(f"{self.root}/health", timeout=(self.timeout[0], 5.0)) as resp:
                    healthy = resp.status_code == 200
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
