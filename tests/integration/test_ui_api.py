"""The viewer's HTTP side without a browser: its data needs the API key like `/v1/` (the page
itself is public), and `UI_ENABLED=0` removes it all."""
from __future__ import annotations

import pytest
import requests

pytestmark = pytest.mark.integration


def test_the_page_is_public_and_its_data_needs_a_key(make_gateway, upstream):
    url = make_gateway(llm_api_base=upstream.base_url, api_keys=("ui-key",))
    page = requests.get(f"{url}/ui/", timeout=10)
    assert page.status_code == 200 and "viewer.js" in page.text
    assert requests.get(f"{url}/ui/static/viewer.js", timeout=10).status_code == 200
    refused = requests.get(f"{url}/ui/api/sessions", timeout=10)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    allowed = requests.get(f"{url}/ui/api/sessions", headers={"Authorization": "Bearer ui-key"}, timeout=10)
    assert allowed.status_code == 200 and allowed.json() == {"data": []}
    bad = requests.get(f"{url}/ui/api/sessions", params={"limit": 0}, headers={"Authorization": "Bearer ui-key"},
                       timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "limit"


def test_ui_enabled_0_removes_the_viewer(make_gateway, upstream):
    url = make_gateway(llm_api_base=upstream.base_url, ui_enabled=False)
    assert requests.get(f"{url}/ui/", timeout=10).status_code == 404
    assert requests.get(f"{url}/ui/api/sessions", timeout=10).status_code == 404
