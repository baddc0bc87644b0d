"""Unknown top-level request fields are accepted (clients send newer ones) and logged once per name."""
from __future__ import annotations

import logging
import uuid

from schemas import parse_create_request


def test_an_unknown_field_is_accepted_and_logged_once_per_name(caplog):
    names = [f"future_field_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    with caplog.at_level(logging.INFO, logger="gateway.requests"):
        for _ in range(3):
            request = parse_create_request({"model": "m", "input": "hi", names[0]: {"x": 1}, names[1]: True})
            assert names[0] not in request and request["input"] == "hi"
    logged = [r.fields["field"] for r in caplog.records if r.name == "gateway.requests"]
    assert sorted(logged) == sorted(names)


def test_known_fields_are_not_reported(caplog):
    with caplog.at_level(logging.INFO, logger="gateway.requests"):
        parse_create_request({"model": "m", "input": "hi", "prompt_cache_key": "k", "stream_options": {}})
    assert not [r for r in caplog.records if r.name == "gateway.requests"]
