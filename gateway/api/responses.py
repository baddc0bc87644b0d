"""`POST /v1/responses` as JSON or as an SSE stream."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from gateway.api import services
from gateway.errors import APIError
from gateway.sse import SSE_HEADERS, SSE_MIMETYPE, encode_stream

bp = Blueprint("responses", __name__, url_prefix="/v1")


def json_body() -> object:
    body = request.get_json(force=True, silent=True)
    if body is None:
        raise APIError(400, "We could not parse the JSON body of your request. The body must be a JSON object.",
                       code="invalid_json")
    return body


@bp.post("/responses")
def create_response():
    engine = services().engine
    turn = engine.prepare(json_body())
    if turn.request["stream"]:
        return Response(encode_stream(engine.stream(turn)), mimetype=SSE_MIMETYPE, headers=SSE_HEADERS)
    return jsonify(engine.complete(turn))
