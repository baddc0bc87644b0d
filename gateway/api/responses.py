"""`/v1/responses`: create (JSON or SSE), retrieve, delete, and list input items."""
from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request

from gateway import background
from gateway.api import scope
from gateway.api.pagination import include_params, page_params, with_includes
from gateway.client_watch import CLIENT_WATCH
from gateway.errors import APIError, invalid_request
from gateway.json_body import parse_json
from gateway.sse import SSE_HEADERS, SSE_MIMETYPE, encode_stream
from gateway.worker import MALFORMED_BODY, body_read

bp = Blueprint("responses", __name__, url_prefix="/v1")
CLIENT_GONE = APIError(499, "The client disconnected before the response finished.", type="server_error",
                       code="client_disconnected")


def json_body() -> object:
    # werkzeug cuts a chunked body (no Content-Length) off at MAX_CONTENT_LENGTH instead of refusing
    # it, so a body that filled the limit is refused here, as one with a Content-Length would be.
    try:
        data = request.get_data(cache=True)
    except MALFORMED_BODY as exc:
        raise APIError(400, f"The request body is malformed: {exc}", code="invalid_body") from exc
    body_read(request.environ)
    limit = request.max_content_length
    if limit and request.content_length is None and len(data) >= limit:
        raise APIError(413, "The request body is too large.", code="request_too_large")
    return parse_json(data)


def not_found(response_id: str) -> APIError:
    return APIError(404, f"Response with id '{response_id}' not found.", param="response_id", code="not_found")


@bp.post("/responses")
def create_response():
    engine = scope().engine
    turn = engine.prepare(json_body(), headers=request.headers)
    g.access.turn = turn
    if turn.request["background"]:
        queued = background.RUNS.launch(engine, turn)
        if turn.request["stream"]:
            return stream_log(queued["response"]["id"], after=-1)
        return jsonify(queued["response"])
    if turn.request["stream"]:
        return Response(encode_stream(engine.stream_batches(turn)), mimetype=SSE_MIMETYPE, headers=SSE_HEADERS)
    with CLIENT_WATCH.watching(request.environ, lambda: engine.cancel(turn, CLIENT_GONE)):
        return jsonify(engine.complete(turn))


@bp.post("/responses/compact")
def compact_response():
    return jsonify(scope().engine.compact(json_body()))


@bp.post("/responses/input_tokens")
def count_input_tokens():
    return jsonify({"object": "response.input_tokens", "input_tokens": scope().engine.count_input_tokens(json_body())})


def stream_log(response_id: str, after: int) -> Response:
    """A background response's logged events after `after`, following it to its terminal event."""
    return Response(encode_stream(background.follow(scope().records, response_id, after)), mimetype=SSE_MIMETYPE,
                    headers=SSE_HEADERS)


def starting_after() -> int:
    raw = request.args.get("starting_after", "-1")
    try:
        value = int(raw)
    except ValueError:
        value = -2
    if value < -1:
        raise invalid_request("starting_after must be a sequence number (an integer of 0 or more).",
                              param="starting_after")
    return value


@bp.get("/responses/<response_id>")
def get_response(response_id: str):
    response = scope().records.get_response(response_id)
    if response is None:
        raise not_found(response_id)
    if request.args.get("stream", "false").lower() == "true":
        if not response.get("background"):
            raise invalid_request("Streaming a stored response is only available for background responses.",
                                  param="stream")
        return stream_log(response_id, starting_after())
    return jsonify(response)


@bp.post("/responses/<response_id>/cancel")
def cancel_response(response_id: str):
    response = background.cancel(scope().records, response_id)
    if response is None:
        raise not_found(response_id)
    return jsonify(response)


@bp.delete("/responses/<response_id>")
def delete_response(response_id: str):
    if not scope().records.delete_response(response_id):
        raise not_found(response_id)
    return jsonify({"id": response_id, "object": "response", "deleted": True})


@bp.get("/responses/<response_id>/input_items")
def list_input_items(response_id: str):
    include = include_params()
    page = scope().records.list_input_items(response_id, **page_params(before=True))
    if page is None:
        raise not_found(response_id)
    page.data = with_includes(page.data, include)
    return jsonify(page.to_dict())
