"""Fixtures for the unit tests: a Flask app wired to a `responses`-mocked upstream."""
from __future__ import annotations

from typing import Any, Callable

import pytest
import responses
from flask import Flask

from app import create_app
from gateway.config import Settings

UPSTREAM_BASE = "http://upstream.test"
CHAT_URL = f"{UPSTREAM_BASE}/v1/chat/completions"
RESPONSES_URL = f"{UPSTREAM_BASE}/v1/responses"


@pytest.fixture
def make_app(tmp_path) -> Callable[..., Flask]:
    """`make_app(**settings)`: the real app in front of http://upstream.test, no readiness wait,
    storing into a SQLite file of this test's own."""
    apps: list[Flask] = []

    def factory(**overrides: Any) -> Flask:
        overrides.setdefault("database_url", f"sqlite:///{tmp_path / 'unit.db'}")
        settings = Settings(llm_api_base=UPSTREAM_BASE, skip_llm_ready_check=True, **overrides)
        apps.append(create_app(settings))
        return apps[-1]

    yield factory
    # Each app's worker lease renews and sweeps on a thread of its own, on whatever database the
    # process's storage is bound to next: stopped here, so it cannot touch a later test's.
    for app in apps:
        app.extensions["gateway"].close()


@pytest.fixture
def client(make_app):
    return make_app().test_client()


@pytest.fixture
def upstream():
    """A `responses` mock of every upstream call (requests' own adapter, which production uses
    too); unmatched calls fail the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
