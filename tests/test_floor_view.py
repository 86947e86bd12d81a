"""The floor view's HTTP API: tokens, agent scoping, actions reaching the engine, event streams."""

from __future__ import annotations

import json
import logging

import pytest
from aiohttp.test_utils import TestClient, TestServer

from alerts.actions import DEFER_NOTE
from alerts.floor import AGENT_COOKIE, MAX_QUEUED_UPDATES, SUPERVISOR_COOKIE
from alerts.tokens import agent_token
from streams.events import parse_ts
from streams.web import create_app
from tests.floor_support import TICK_S, TOKEN, Floor

SUPERVISOR = {"Authorization": f"Bearer {TOKEN}"}


def agent_headers(agent_id: str) -> dict:
    return {"Authorization": f"Bearer {agent_token(TOKEN, agent_id)}"}


@pytest.fixture
def floor() -> Floor:
    floor = Floor()
    # Every simulated agent logs in within 120 s; their events apply 30 s later.
    floor.step(180.0)
    return floor


@pytest.fixture
async def client(floor: Floor):
    app = create_app(lambda: True)
    floor.view.add_routes(app)
    async with TestClient(TestServer(app)) as client:
        yield client


async def read_event(response) -> tuple[str, dict]:
    """Read the next server-sent event of ``response``; return its name and data."""
    name = None
    while True:
        line = (await response.content.readline()).decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: ") and name is not None:
            return name, json.loads(line[len("data: "):])


# Tokens ----------------------------------------------------------------------------------------


async def test_floor_page_without_token_is_refused(client: TestClient) -> None:
    response = await client.get("/")

    assert response.status == 401
    assert "Token needed" in await response.text()


async def test_floor_page_with_wrong_query_token_is_refused(client: TestClient) -> None:
    response = await client.get("/?token=not-the-token-at-all", allow_redirects=False)

    assert response.status == 401
    assert SUPERVISOR_COOKIE not in response.cookies


async def test_query_token_sets_cookie_and_leaves_address(client: TestClient) -> None:
    response = await client.get(f"/?token={TOKEN}&team=billing", allow_redirects=False)

    assert response.status == 303
    assert response.headers["Location"] == "/?team=billing"
    cookie = response.cookies[SUPERVISOR_COOKIE]
    assert cookie.value == TOKEN
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/"


async def test_cookie_opens_floor_page(client: TestClient) -> None:
    await client.get(f"/?token={TOKEN}")

    response = await client.get("/")

    assert response.status == 200
    assert "agentload floor view" in await response.text()
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", ["/api/agents", "/api/breaks", "/api/events"])
async def test_api_without_token_is_refused(client: TestClient, path: str) -> None:
    response = await client.get(path)

    assert response.status == 401
    assert "supervisor token is missing or wrong" in (await response.json())["error"]


async def test_api_with_wrong_bearer_token_is_refused(client: TestClient) -> None:
    response = await client.get("/api/agents", headers={"Authorization": "Bearer floor-test-token-012345678X"})

    assert response.status == 401


async def test_api_ignores_query_token(client: TestClient) -> None:
    response = await client.get(f"/api/agents?token={TOKEN}")

    assert response.status == 401


async def test_api_agents_returns_every_agent(client: TestClient, floor: Floor) -> None:
    floor.view.flush()

    response = await client.get("/api/agents", headers=SUPERVISOR)

    document = await response.json()
    assert response.status == 200
    assert sorted(row["agent_id"] for row in document["agents"]) == [f"agent-{n:03d}" for n in range(1, 25)]
    assert document["seq"] == 1
    assert document["ts"] == "2026-03-02T08:03:00.000Z"


async def test_api_agents_filters_by_team_and_level(client: TestClient) -> None:
    response = await client.get("/api/agents?team=support&level=green,amber", headers=SUPERVISOR)

    rows = (await response.json())["agents"]
    assert sorted(row["agent_id"] for row in rows) == [f"agent-{n:03d}" for n in range(13, 25)]
    assert {row["team_id"] for row in rows} == {"support"}


async def test_rejected_token_logged_without_token(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="agentload")
    wrong = "wrong-token-abcdefghijklmnop"

    await client.get("/api/agents", headers={"Authorization": f"Bearer {wrong}"})
    await client.get(f"/?token={wrong}")
    await client.get(f"/?token={TOKEN}")
    await client.post("/api/agents/agent-003/breaks", json={}, headers=agent_headers("agent-003"))

    assert "rejected 1 requests with a missing or wrong token so far (latest: GET /api/agents" in caplog.text
    assert wrong not in caplog.text
    assert TOKEN not in caplog.text
    assert agent_token(TOKEN, "agent-003") not in caplog.text


async def test_metrics_and_health_need_no_token(client: TestClient) -> None:
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/metrics")).status == 200


# Agent scoping ---------------------------------------------------------------------------------


async def test_agent_token_opens_own_view(client: TestClient) -> None:
    response = await client.get("/api/agents/agent-003", headers=agent_headers("agent-003"))

    document = await response.json()
    assert response.status == 200
    assert document["agent"]["agent_id"] == "agent-003"


async def test_agent_token_refused_for_other_agent(client: TestClient) -> None:
    response = await client.get("/api/agents/agent-004", headers=agent_headers("agent-003"))

    assert response.status == 401
    assert "agent agent-004's own token" in (await response.json())["error"]


async def test_agent_token_refused_for_floor_api(client: TestClient) -> None:
    for path in ("/api/agents", "/api/breaks", "/api/events"):
        response = await client.get(path, headers=agent_headers("agent-003"))
        assert response.status == 401, path


async def test_supervisor_token_refused_for_agent_view(client: TestClient) -> None:
    response = await client.get("/api/agents/agent-003", headers=SUPERVISOR)

    assert response.status == 401


async def test_agent_page_query_token_sets_agent_cookie(client: TestClient) -> None:
    token = agent_token(TOKEN, "agent-003")

    response = await client.get(f"/agent/agent-003?token={token}", allow_redirects=False)

    assert response.status == 303
    assert response.headers["Location"] == "/agent/agent-003"
    assert response.cookies[AGENT_COOKIE].value == token


async def test_agent_page_refuses_other_agents_token(client: TestClient) -> None:
    token = agent_token(TOKEN, "agent-004")

    response = await client.get(f"/agent/agent-003?token={token}", allow_redirects=False)

    assert response.status == 401


async def test_agent_event_stream_shows_only_that_agent(client: TestClient, floor: Floor) -> None:
    async with client.get("/api/agents/agent-003/events", headers=agent_headers("agent-003")) as response:
        name, state = await read_event(response)
        floor.step(600.0)
        floor.view.flush()
        update_name, update = await read_event(response)

    assert name == "state"
    assert state["agent"]["agent_id"] == "agent-003"
    assert update_name == "update"
    assert {row["agent_id"] for row in update["agents"]} <= {"agent-003"}
    assert "agent-004" not in json.dumps(state) + json.dumps(update)


# Actions ---------------------------------------------------------------------------------------


async def test_approve_moves_break_to_accepted(client: TestClient, floor: Floor) -> None:
    record = floor.step_until_open_break()

    response = await client.post(f"/api/breaks/{record['break_id']}/actions", json={"action": "approve"}, headers=SUPERVISOR)
    floor.apply_actions()

    sent = (await response.json())["event"]
    assert response.status == 202
    assert sent["action"] == "accept"
    assert sent["actor"] == "supervisor"
    assert sent["break_id"] == record["break_id"]
    assert sent["agent_id"] == record["agent_id"]
    assert floor.transitions_of(record["break_id"])[:2] == [("suggested", "agentload"), ("accepted", "supervisor")]
    assert floor.view.state.open_breaks[record["break_id"]]["type"] == "accepted"


async def test_action_event_time_is_runtime_now(client: TestClient, floor: Floor) -> None:
    record = floor.step_until_open_break()
    now = floor.runtime.now

    response = await client.post(f"/api/breaks/{record['break_id']}/actions", json={"action": "cancel"}, headers=SUPERVISOR)

    assert parse_ts((await response.json())["event"]["ts"]) == pytest.approx(now, abs=0.001)


async def test_defer_declines_with_note(client: TestClient, floor: Floor) -> None:
    record = floor.step_until_open_break()

    response = await client.post(f"/api/breaks/{record['break_id']}/actions", json={"action": "defer"}, headers=SUPERVISOR)
    floor.apply_actions()

    assert response.status == 202
    assert floor.transitions_of(record["break_id"]) == [("suggested", "agentload"), ("declined", "supervisor")]
    declined = [tr for tr in floor.transitions if tr.break_id == record["break_id"]][-1]
    assert declined.note == DEFER_NOTE
    assert record["break_id"] not in floor.view.state.open_breaks


async def test_cancel_ends_accepted_break(client: TestClient, floor: Floor) -> None:
    record = floor.step_until_open_break()
    url = f"/api/breaks/{record['break_id']}/actions"
    await client.post(url, json={"action": "approve"}, headers=SUPERVISOR)
    floor.apply_actions()

    response = await client.post(url, json={"action": "cancel", "note": "queue spike"}, headers=SUPERVISOR)
    floor.apply_actions()

    assert response.status == 202
    assert floor.transitions_of(record["break_id"]) == [
        ("suggested", "agentload"),
        ("accepted", "supervisor"),
        ("cancelled", "supervisor"),
    ]
    assert floor.transitions[-1].note == "queue spike"


async def test_approve_of_accepted_break_is_conflict(client: TestClient, floor: Floor) -> None:
    record = floor.step_until_open_break()
    url = f"/api/breaks/{record['break_id']}/actions"
    await client.post(url, json={"action": "approve"}, headers=SUPERVISOR)
    floor.apply_actions()

    response = await client.post(url, json={"action": "approve"}, headers=SUPERVISOR)

    assert response.status == 409
    assert "is accepted, so 'approve' cannot apply" in (await response.json())["error"]


async def test_action_on_unknown_break_is_not_found(client: TestClient) -> None:
    response = await client.post("/api/breaks/brk-nope/actions", json={"action": "approve"}, headers=SUPERVISOR)

    assert response.status == 404


async def test_unknown_supervisor_action_is_bad_request(client: TestClient, floor: Floor) -> None:
    record = floor.step_until_open_break()

    response = await client.post(f"/api/breaks/{record['break_id']}/actions", json={"action": "start"}, headers=SUPERVISOR)

    assert response.status == 400
    assert (await response.json())["error"] == "action 'start' is not valid here; use one of approve, defer, cancel"


async def test_action_needs_json_body(client: TestClient, floor: Floor) -> None:
    record = floor.step_until_open_break()

    response = await client.post(
        f"/api/breaks/{record['break_id']}/actions", data={"action": "approve"}, headers=SUPERVISOR
    )

    assert response.status == 415


async def test_action_from_other_origin_is_forbidden(client: TestClient, floor: Floor) -> None:
    record = floor.step_until_open_break()

    response = await client.post(
        f"/api/breaks/{record['break_id']}/actions",
        json={"action": "approve"},
        headers={**SUPERVISOR, "Origin": "http://evil.example"},
    )

    assert response.status == 403
    assert floor.engine.transitions == []


async def test_action_note_too_long_is_bad_request(client: TestClient, floor: Floor) -> None:
    record = floor.step_until_open_break()

    response = await client.post(
        f"/api/breaks/{record['break_id']}/actions", json={"action": "cancel", "note": "x" * 501}, headers=SUPERVISOR
    )

    assert response.status == 400


async def test_agent_request_round_trips(client: TestClient, floor: Floor) -> None:
    headers = agent_headers("agent-005")

    response = await client.post("/api/agents/agent-005/breaks", json={}, headers=headers)
    floor.apply_actions()
    opened = floor.view.state.open_break_of("agent-005")
    accept = await client.post(
        f"/api/agents/agent-005/breaks/{opened['break_id']}/actions", json={"action": "accept"}, headers=headers
    )
    floor.apply_actions()

    assert response.status == 202
    assert (await response.json())["event"]["action"] == "request"
    assert "break_id" not in (await response.json())["event"]
    assert opened["trigger"] == "agent_request"
    assert accept.status == 202
    assert floor.transitions_of(opened["break_id"])[:2] == [("suggested", "agent"), ("accepted", "agent")]


async def test_agent_request_with_open_break_is_conflict(client: TestClient, floor: Floor) -> None:
    headers = agent_headers("agent-005")
    await client.post("/api/agents/agent-005/breaks", json={}, headers=headers)
    floor.apply_actions()

    response = await client.post("/api/agents/agent-005/breaks", json={}, headers=headers)

    assert response.status == 409
    assert "already has break" in (await response.json())["error"]


async def test_agent_decline_ends_own_offer(client: TestClient, floor: Floor) -> None:
    record = floor.step_until_open_break()
    agent_id = record["agent_id"]

    response = await client.post(
        f"/api/agents/{agent_id}/breaks/{record['break_id']}/actions",
        json={"action": "decline"},
        headers=agent_headers(agent_id),
    )
    floor.apply_actions()

    assert response.status == 202
    assert floor.transitions_of(record["break_id"]) == [("suggested", "agentload"), ("declined", "agent")]


async def test_agent_cannot_act_on_other_agents_break(client: TestClient, floor: Floor) -> None:
    record = floor.step_until_open_break()
    other = "agent-001" if record["agent_id"] != "agent-001" else "agent-002"

    response = await client.post(
        f"/api/agents/{other}/breaks/{record['break_id']}/actions",
        json={"action": "accept"},
        headers=agent_headers(other),
    )

    assert response.status == 404
    assert floor.engine.transitions == []


async def test_agent_cannot_cancel(client: TestClient, floor: Floor) -> None:
    record = floor.step_until_open_break()
    agent_id = record["agent_id"]

    response = await client.post(
        f"/api/agents/{agent_id}/breaks/{record['break_id']}/actions",
        json={"action": "cancel"},
        headers=agent_headers(agent_id),
    )

    assert response.status == 400


# Event streams ---------------------------------------------------------------------------------


async def test_event_stream_starts_with_full_state(client: TestClient, floor: Floor) -> None:
    floor.view.flush()

    async with client.get("/api/events", headers=SUPERVISOR) as response:
        name, state = await read_event(response)

    assert response.headers["Content-Type"] == "text/event-stream"
    assert name == "state"
    assert len(state["agents"]) == 24
    assert state["seq"] == 1


async def test_event_stream_sends_new_transitions(client: TestClient, floor: Floor) -> None:
    async with client.get("/api/events", headers=SUPERVISOR) as response:
        await read_event(response)
        record = floor.step_until_open_break()
        floor.view.flush()
        name, update = await read_event(response)

    assert name == "update"
    assert record["event_id"] in [transition["event_id"] for transition in update["transitions"]]
    reasons = next(t for t in update["transitions"] if t["event_id"] == record["event_id"])["reasons"]
    assert abs(sum(reason["share"] for reason in reasons) - 1.0) < 1e-9


async def test_lagging_stream_gets_full_state(client: TestClient, floor: Floor) -> None:
    async with client.get("/api/events", headers=SUPERVISOR) as response:
        await read_event(response)
        # Flushes run back to back without yielding to the stream, so its queue overflows.
        for _ in range(MAX_QUEUED_UPDATES + 5):
            floor.step(5.0)
            floor.view.flush()
        name, document = await read_event(response)

    assert name == "state"
    assert document["seq"] == MAX_QUEUED_UPDATES + 5
    assert len(document["agents"]) == 24


async def test_shutdown_closes_event_streams(floor: Floor) -> None:
    app = create_app(lambda: True)
    floor.view.add_routes(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    response = await client.get("/api/events", headers=SUPERVISOR)
    await read_event(response)

    await client.close()

    assert floor.view._subscribers == set()
