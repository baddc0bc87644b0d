"""The session viewer (`/ui/`) in a real browser against the gateway under gunicorn with two keys:
log in, find a chain the test made (a namespaced tool call with reasoning, its output, a failed
turn), read it turn by turn, unfold reasoning and raw JSON, use it by keyboard and on a narrow
window, page through a 1,000-turn chain, follow a background response live, and see that another
tenant's key shows none of it. Screenshots land in test-artifacts/ui/."""
from __future__ import annotations

import time

import pytest
import requests

from gateway.tenants import key_tenant_name
from storage.db import connect_database, db
from storage.repository import Repository
from tests.fakes import upstream as fake
from tests.integration.test_codex_replay import FLAT_ECHO
from tests.reliability.test_lifecycle import slow
from tests.storage.test_hydration_cost import turn_at
from tests.support import GunicornGateway

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
MODEL = "fake-model"
KEY, OTHER = "viewer-key-a", "viewer-key-b"
ECHO = {"type": "namespace", "name": "mcp__echo", "description": "Echo tools.",
        "tools": [{"type": "function", "name": "echo", "parameters": {"type": "object", "properties": {}}}]}


@pytest.fixture(scope="module")
def viewer(fake_upstream, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("viewer")
    server = GunicornGateway.for_upstream(fake_upstream.base_url, tmp, GATEWAY_API_KEYS=f"{KEY},{OTHER}",
                                          GATEWAY_THREADS="16").start()
    server.tmp = tmp
    yield server
    server.stop()


def post(url: str, **body) -> requests.Response:
    return requests.post(f"{url}/v1/responses", json={"model": MODEL, **body}, timeout=30,
                         headers={"Authorization": f"Bearer {KEY}"})


@pytest.fixture
def chain(viewer, upstream) -> str:
    """Three turns: a namespaced call with reasoning, the call's output answered, a failed turn."""
    upstream.enqueue(fake.tool_calls([{"name": FLAT_ECHO, "arguments": {"text": "hi"}}], reasoning="Echo it now."),
                     fake.text("It said hi."), fake.http_error(500, "engine down"))
    first = post(viewer.url, input="Echo hi please.", tools=[ECHO]).json()
    call = next(item for item in first["output"] if item["type"] == "function_call")
    second = post(viewer.url, previous_response_id=first["id"],
                  input=[{"type": "function_call_output", "call_id": call["call_id"], "output": "echo: hi"}]).json()
    assert post(viewer.url, previous_response_id=second["id"], input="Again?").status_code == 502
    return second["id"]


def log_in(page, url: str, key: str = KEY) -> None:
    page.goto(f"{url}/ui/")
    page.fill("#key", key)
    page.press("#key", "Enter")


def test_a_chain_read_in_the_browser(viewer, chain, page, artifacts):
    log_in(page, viewer.url)
    page.wait_for_selector("tr.session")
    failed = page.locator("tr.session", has_text="failed")
    assert failed.count() == 1 and MODEL in failed.inner_text()
    page.screenshot(path=artifacts / "sessions.png", full_page=True)

    page.fill("input[name=q]", chain)
    page.press("input[name=q]", "Enter")
    page.wait_for_selector(f"a[href='#/chain/{chain}']")
    assert page.locator("tr.session").count() == 1
    page.focus(f"a[href='#/chain/{chain}']")
    page.keyboard.press("Enter")                     # opened by keyboard
    page.wait_for_selector(".turn")
    turns = page.locator(".turn")
    assert turns.count() == 2 and "completed" in turns.nth(1).inner_text()
    assert page.locator(".item.call .who").first.inner_text() == "call mcp__echo.echo"
    assert '"text": "hi"' in page.locator(".item.call pre.arguments").first.inner_text()
    assert "echo: hi" in page.locator(".item.output").first.inner_text()
    reasoning = page.locator("details.reasoning").first
    assert not reasoning.evaluate("node => node.open") and not page.is_visible("text=Echo it now.")
    reasoning.locator("summary").focus()
    page.keyboard.press("Enter")                     # unfolded by keyboard
    assert page.is_visible("text=Echo it now.")
    page.locator(".item.call details.raw summary").first.click()
    assert '"type": "function_call"' in page.locator(".item.call details.raw pre").first.inner_text()
    page.screenshot(path=artifacts / "chain.png", full_page=True)


def test_a_failed_turn_shows_its_error_code(viewer, chain, page):
    log_in(page, viewer.url)
    page.wait_for_selector("tr.session")
    page.select_option("select[name=status]", "failed")
    page.press("input[name=model]", "Enter")
    page.locator("tr.session a").first.click()
    page.wait_for_selector(".turn-error")
    assert page.locator(".turn").count() == 3
    assert page.locator(".turn-error").inner_text().startswith("error server_error:")


def test_a_narrow_window_has_no_sideways_scroll(viewer, chain, page, artifacts):
    page.set_viewport_size({"width": 360, "height": 740})
    log_in(page, viewer.url)
    page.wait_for_selector("tr.session")
    page.locator("tr.session a").first.click()
    page.wait_for_selector(".turn")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.screenshot(path=artifacts / "narrow.png", full_page=True)


def test_a_thousand_turn_chain_loads_a_page_at_a_time(viewer, page):
    db.initialize(connect_database(f"sqlite:///{viewer.tmp / 'gateway.db'}"))
    records = Repository(key_tenant_name(KEY))
    for n in range(1000):
        records.save_response(turn_at(n))
    started = time.monotonic()
    log_in(page, viewer.url)
    page.wait_for_selector("tr.session")
    page.goto(f"{viewer.url}/ui/#/chain/resp_0999")
    page.wait_for_selector("#resp_0999")
    assert time.monotonic() - started < 5 and page.locator(".turn").count() == 50
    assert page.locator(".turn h2 span").first.inner_text() == "Turn 951"
    page.click("#earlier")
    page.wait_for_selector("#resp_0900")
    assert page.locator(".turn").count() == 100


def test_a_background_response_is_followed_live(viewer, upstream, page, artifacts):
    upstream.enqueue(slow(pieces=40, delay_s=0.1))
    queued = post(viewer.url, input="work in the background", background=True).json()
    log_in(page, viewer.url)
    page.wait_for_selector("tr.session")
    page.goto(f"{viewer.url}/ui/#/chain/{queued['id']}")
    page.wait_for_function("document.getElementById('live-text').textContent.length > 0")
    assert not page.is_hidden("#live")
    page.screenshot(path=artifacts / "live.png", full_page=True)
    page.wait_for_selector(".turn .status-completed", timeout=30_000)
    assert page.is_hidden("#live") and "w39" in page.locator(".turn").last.inner_text()


def test_another_tenant_sees_none_of_it(viewer, chain, page):
    log_in(page, viewer.url, OTHER)
    page.wait_for_selector("#empty:not([hidden])")
    assert page.locator("tr.session").count() == 0
    page.goto(f"{viewer.url}/ui/#/chain/{chain}")
    page.wait_for_selector("#error:has-text('not found')")


def test_a_wrong_key_is_asked_again(viewer, page):
    log_in(page, viewer.url, "not-a-key")
    page.wait_for_selector("#login-error:has-text('not accepted')")
    assert page.is_visible("#login")
