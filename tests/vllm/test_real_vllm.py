"""The shared integration suite (tests/scenarios.py) against a real vLLM serving the tiny model,
through a gateway of each upstream kind. The model is random: scenarios check shapes, schemas and
statuses, and ask again (up to five times) where they need a particular shape."""
from __future__ import annotations

import pytest

from tests.scenarios import SCENARIOS, Target

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(300)]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_scenario(scenario, real_gateway, vllm_server):
    kind, server = real_gateway
    scenario(Target(url=server.url, kind=kind, model=vllm_server.model, attempts=5,
                    context_window=vllm_server.max_model_len))
