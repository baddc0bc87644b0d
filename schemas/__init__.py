"""marshmallow schemas for the Responses API request bodies."""
from schemas.errors import validation_error_to_api
from schemas.requests import ResponseCreateSchema, parse_compact_request, parse_create_request

__all__ = ["ResponseCreateSchema", "parse_compact_request", "parse_create_request", "validation_error_to_api"]
