"""The floor view and the agent view in headless Chromium, against a running ``agentload run``.

Chromium is Debian's (``deploy/browser/ensure-chromium``), driven by Playwright for Python; the
tests skip when it is missing. ``agentload run`` runs as a subprocess with a fixed seed and start
time, and with offers left for the views to answer.
"""

from __future__ import annotations

import json
import math
import os
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from alerts.tokens import agent_token
from streams.events import parse_ts
from tests.floor_support import TOKEN, free_port, start_agentload, stop_agentload

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Offers and accepted breaks stay open for a day of floor time, almost 5 minutes at 300x speed,
# so a slow test still finds them open. With no team limit an agent's own request is offered,
# never deferred.
BROWSER_CONFIG = """
[breaks]
offer_expiry_s = 86400.0
accepted_start_timeout_s = 86400.0
team_break_share = 1.0
"""
WAIT_MS = 15_000


@pytest.fixture(scope="module")
def chromium_path() -> str:
    path = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not os.access(path, os.X_OK):
        pytest.skip(f"Chromium not found at {path}; run deploy/browser/ensure-chromium, or set CHROMIUM")
    return path


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator:
    # Each launch gets a new, empty user data directory from Playwright.
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def floor_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = tmp_path_factory.mktemp("floor") / "agentload.toml"
    config.write_text(BROWSER_CONFIG)
    port = free_port()
    process = start_agentload(port, "--speed", "300", "--agents", "48", "--no-simulated-answers", config=config)
    yield f"http://127.0.0.1:{port}"
    stop_agentload(process)


@pytest.fixture
def page(browser) -> Iterator:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Refused requests are logged as console errors too; the tests make some on purpose.
    page.on(
        "console",
        lambda message: errors.append(message.text)
        if message.type == "error" and not message.text.startswith("Failed to load resource")
        else None,
    )
    yield page
    context.close()
    assert errors == []


def wait_until(page, expression: str, timeout_s: float = WAIT_MS / 1000) -> None:
    """Poll the JavaScript ``expression`` in the page until it is true.

    Playwright's own wait_for_function evaluates its predicate with eval, which the page's
    Content-Security-Policy forbids; page.evaluate goes through the debugging protocol instead.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if page.evaluate(expression):
            return
        time.sleep(0.05)
    raise AssertionError(f"{expression} still false after {timeout_s:g} s")


def api(base_url: str, path: str, token: str = TOKEN) -> dict:
    request = urllib.request.Request(base_url + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5.0) as response:
        return json.load(response)


def wait_for_api(base_url: str, path: str, predicate, timeout_s: float = 15.0):
    """Poll ``path`` until ``predicate(document)`` returns a true value; return that value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = predicate(api(base_url, path))
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{path} did not show what the test waits for within {timeout_s:g} s")


def open_floor(page, floor_url: str) -> None:
    page.goto(f"{floor_url}/?token={TOKEN}")
    page.wait_for_selector("#connection:text('live')", timeout=WAIT_MS)
    page.wait_for_selector(".agent", timeout=WAIT_MS)


def newest_suggested(floor_url: str) -> dict:
    def pick(document: dict):
        suggested = [record for record in document["breaks"] if record["type"] == "suggested"]
        return max(suggested, key=lambda record: record["time"]) if suggested else None

    return wait_for_api(floor_url, "/api/breaks", pick)


def feed_entry(floor_url: str, break_id: str, transition_type: str) -> dict:
    def find(document: dict):
        for record in document["feed"]:
            if record["break_id"] == break_id and record["type"] == transition_type:
                return record
        return None

    return wait_for_api(floor_url, "/api/breaks", find)


# Access ----------------------------------------------------------------------------------------


def test_floor_page_refused_without_token(page, floor_url: str) -> None:
    response = page.goto(f"{floor_url}/")

    assert response.status == 401
    assert page.get_by_role("heading", name="Token needed").is_visible()
    assert page.locator(".agent").count() == 0


def test_floor_page_loads_with_token(page, floor_url: str) -> None:
    open_floor(page, floor_url)

    assert page.url == f"{floor_url}/"
    wait_until(page, "document.querySelectorAll('.agent').length === 48")
    assert page.locator("section.team").count() == 4
    assert page.locator("#team-filter option").all_inner_texts() == [
        "All teams",
        "billing",
        "collections",
        "retention",
        "support",
    ]


# Live updates and actions ----------------------------------------------------------------------


def test_suggested_break_appears_live_with_reasons(page, floor_url: str) -> None:
    open_floor(page, floor_url)
    page.evaluate("window.loadedOnce = true")
    shown_before = set(page.locator(".offer").evaluate_all("nodes => nodes.map(node => node.dataset.breakId)"))

    def new_suggestion(document: dict):
        fresh = [r for r in document["breaks"] if r["type"] == "suggested" and r["break_id"] not in shown_before]
        return fresh[0] if fresh else None

    record = wait_for_api(floor_url, "/api/breaks", new_suggestion, timeout_s=30.0)
    offer = page.locator(f".offer[data-break-id='{record['break_id']}']")
    offer.wait_for(timeout=WAIT_MS)

    assert page.evaluate("window.loadedOnce") is True
    assert offer.locator(".offer-why").inner_text() == f"Why: {record['trigger_words']}."
    first = record["reasons"][0]
    words, points = first["detail"].rsplit(": ", 1)
    # Math.round in the page rounds halves up.
    percent = math.floor(first["share"] * 100 + 0.5)
    assert offer.locator(".reasons li").first.inner_text() == f"{words} ({percent}%, {points})"
    assert page.locator(f".feed-item[data-type='suggested']:has-text('{record['agent_id']}')").count() >= 1


def test_approve_click_accepts_break(page, floor_url: str) -> None:
    open_floor(page, floor_url)
    record = newest_suggested(floor_url)
    offer = page.locator(f".offer[data-break-id='{record['break_id']}']")

    offer.get_by_role("button", name=f"Approve break for {record['agent_id']}").click()

    page.locator(f".offer[data-break-id='{record['break_id']}'][data-status='accepted']").wait_for(timeout=WAIT_MS)
    accepted = feed_entry(floor_url, record["break_id"], "accepted")
    assert accepted["actor"] == "supervisor"
    assert offer.get_by_role("button", name=f"Approve break for {record['agent_id']}").count() == 0
    assert offer.get_by_role("button", name=f"Cancel break for {record['agent_id']}").count() == 1


def idle_agent(floor_url: str, exclude: set[str] = frozenset()) -> str:
    """Return the agent with no open break and the lowest load, the least likely to get an offer meanwhile."""
    rows = api(floor_url, "/api/agents")["agents"]
    candidates = [row for row in rows if row["break_id"] is None and row["agent_id"] not in exclude]
    return min(candidates, key=lambda row: (row["load"], row["agent_id"]))["agent_id"]


def open_agent_view(page, floor_url: str, agent_id: str) -> None:
    page.goto(f"{floor_url}/agent/{agent_id}?token={agent_token(TOKEN, agent_id)}")
    page.wait_for_selector("#connection:text('live')", timeout=WAIT_MS)


def test_agent_request_round_trips(page, floor_url: str) -> None:
    agent_id = idle_agent(floor_url)
    open_agent_view(page, floor_url, agent_id)

    page.get_by_role("button", name="Ask for a recovery break").click()
    page.get_by_role("button", name="Accept the break").click(timeout=WAIT_MS)
    page.wait_for_selector("#offer-status:text('is accepted')", timeout=WAIT_MS)

    open_break = [r for r in api(floor_url, "/api/breaks")["breaks"] if r["agent_id"] == agent_id][0]
    assert open_break["trigger"] == "agent_request"
    assert open_break["type"] == "accepted"
    assert feed_entry(floor_url, open_break["break_id"], "accepted")["actor"] == "agent"
    assert page.locator("#history li").first.inner_text().endswith("break accepted by you.")


def test_agent_view_never_shows_other_agent(page, floor_url: str) -> None:
    agent_id = "agent-030"
    open_agent_view(page, floor_url, agent_id)
    page.wait_for_selector("#summary:text('Workload level')", timeout=WAIT_MS)
    page.wait_for_timeout(1500)

    others = [f"agent-{n:03d}" for n in range(1, 49) if f"agent-{n:03d}" != agent_id]
    text = page.content()
    statuses = page.evaluate(
        """async () => Promise.all(['/api/agents', '/api/breaks', '/api/events', '/api/agents/agent-031']
            .map(path => fetch(path).then(response => response.status)))"""
    )
    assert agent_id in text
    assert [other for other in others if other in text] == []
    assert statuses == [401, 401, 401, 401]


# Keyboard and levels ---------------------------------------------------------------------------


def tab_to(page, predicate_js: str, limit: int = 60) -> None:
    """Press Tab until the focused element satisfies ``predicate_js`` (a JS function of it)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"({predicate_js})(document.activeElement)"):
            return
    raise AssertionError(f"no element matching {predicate_js} reached with {limit} Tab presses")


def test_keyboard_only_filter_and_approve(page, floor_url: str) -> None:
    open_floor(page, floor_url)
    wait_until(page, "document.querySelectorAll('.agent').length === 48")
    record = newest_suggested(floor_url)
    page.locator(f".offer[data-break-id='{record['break_id']}']").wait_for(timeout=WAIT_MS)

    tab_to(page, "node => node.id === 'team-filter'")
    page.keyboard.press("ArrowDown")
    billing_only = page.evaluate("document.getElementById('counts').textContent")
    page.keyboard.press("Home")

    tab_to(page, "node => node.name === 'level' && node.value === 'green'")
    page.keyboard.press("Space")
    green_hidden = page.locator(".agent.lv-green:visible").count()
    page.keyboard.press("Space")

    tab_to(page, f"node => node.dataset.action === 'approve' && node.closest('.offer').dataset.breakId === '{record['break_id']}'")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    page.keyboard.press("Enter")

    assert billing_only.startswith("12 agents shown in team billing:")
    assert green_hidden == 0
    assert outline == "solid"
    assert feed_entry(floor_url, record["break_id"], "accepted")["actor"] == "supervisor"


def test_keyboard_only_agent_request(page, floor_url: str) -> None:
    agent_id = idle_agent(floor_url, exclude={"agent-030"})
    open_agent_view(page, floor_url, agent_id)

    tab_to(page, "node => node.id === 'request'")
    page.keyboard.press("Enter")
    wait_until(page, "document.activeElement.id === 'accept'")
    page.keyboard.press("Enter")

    page.wait_for_selector("#offer-status:text('is accepted')", timeout=WAIT_MS)
    open_break = [r for r in api(floor_url, "/api/breaks")["breaks"] if r["agent_id"] == agent_id][0]
    assert feed_entry(floor_url, open_break["break_id"], "accepted")["actor"] == "agent"


def test_level_readable_without_color(page, floor_url: str) -> None:
    open_floor(page, floor_url)
    wait_until(page, "document.querySelectorAll('.agent.lv-red, .agent.lv-amber').length > 0")
    page.emulate_media(forced_colors="active")

    cards = page.locator(".agent").evaluate_all(
        """nodes => nodes.map(node => ({
            level: node.dataset.level,
            label: node.querySelector('.level').innerText,
            border: getComputedStyle(node).borderTopStyle,
            mark: getComputedStyle(node.querySelector('.level'), '::before').content,
        }))"""
    )

    for card in cards:
        assert card["label"].endswith(f"level {card['level'].upper()}"), card
    styles = {card["level"]: (card["border"], card["mark"]) for card in cards}
    assert len(set(styles.values())) == len(styles)


# Large floor -----------------------------------------------------------------------------------


def test_large_floor_keeps_up(browser, tmp_path: Path) -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    process = start_agentload(port, "--speed", "60", "--agents", "2000")
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        page.goto(f"{base_url}/?token={TOKEN}")
        wait_until(page, "document.querySelectorAll('.agent').length === 2000", timeout_s=30.0)
        cdp = context.new_cdp_session(page)
        cdp.send("Performance.enable")
        before = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        wall_before = time.monotonic()

        caught_up = []
        for _ in range(5):
            server_ts = parse_ts(api(base_url, "/api/agents")["ts"])
            wait_until(page, f"Date.parse(document.getElementById('floor-time').dataset.ts) >= {server_ts * 1000}", 5.0)
            caught_up.append(server_ts)
            page.wait_for_timeout(1000)

        after = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        busy_share = (after["TaskDuration"] - before["TaskDuration"]) / (time.monotonic() - wall_before)
        print(f"2,000 agents at 60x: the page's main thread was busy {busy_share:.0%} of the time")
    finally:
        context.close()
        stop_agentload(process)

    assert len(caught_up) == 5
    assert busy_share < 0.5
