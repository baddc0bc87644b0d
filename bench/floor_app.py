"""The stack's floor under the proxy path: gunicorn + Flask + requests passing the upstream's bytes
through, with nothing of the gateway (no validation, parsing, renumbering, storage or metrics).

`bench.stream_bench` serves it with the shipped gunicorn.conf.py next to the gateway, so the report
shows how much of the proxy path's added time the design card's stack costs by itself and how much is
the gateway's own work. It is a measuring instrument, not a product: nothing imports it.

    gunicorn -c gunicorn.conf.py 'bench.floor_app:create_app()'    # LLM_API_BASE names the upstream
"""
from __future__ import annotations

import os

import requests
from flask import Flask, Response, request

from gateway.config import normalize_api_base


def create_app() -> Flask:
    upstream = normalize_api_base(os.environ.get("LLM_API_BASE", "http://127.0.0.1:8000/v1"))
    session = requests.Session()
    session.trust_env = False       # loopback upstream: no proxy lookup per request
    app = Flask(__name__)

    @app.post("/v1/responses")
    def relay() -> Response:
        answer = session.post(f"{upstream}/responses", data=request.get_data(),
                              headers={"Content-Type": "application/json"}, stream=True, timeout=(5, 60))

        def body():
            try:
                yield from answer.iter_content(chunk_size=None)
            finally:
                answer.close()

        return Response(body(), status=answer.status_code, content_type=answer.headers.get("Content-Type"))

    @app.get("/health")
    def health() -> str:
        return "ok"

    return app
