"""Break actions built from button presses, their status checks, and the floor view's tokens."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from alerts.actions import (
    AGENT_ACTIONS,
    DEFER_NOTE,
    SUPERVISOR_ACTIONS,
    ActionRejected,
    build_break_action,
    check_action,
    engine_sink,
)
from alerts.floor import agent_link
from alerts.tokens import TOKEN_ENV, TokenError, agent_token, resolve_token, tokens_match
from streams.cli import main
from streams.config import load_config
from streams.engine import Engine
from streams.events import parse_ts, validate_break_action
from tests.floor_support import REPO_ROOT, free_port

TS = parse_ts("2026-03-02T09:15:04.120Z")


def test_approve_is_accept_by_supervisor() -> None:
    document = build_break_action(SUPERVISOR_ACTIONS["approve"], "agent-007", TS, break_id="brk-1", event_id="e-1")

    assert document == {
        "event_id": "e-1",
        "agent_id": "agent-007",
        "ts": "2026-03-02T09:15:04.120Z",
        "action": "accept",
        "actor": "supervisor",
        "break_id": "brk-1",
    }


def test_defer_is_decline_with_note() -> None:
    document = build_break_action(SUPERVISOR_ACTIONS["defer"], "agent-007", TS, break_id="brk-1", note="call spike")

    assert document["action"] == "decline"
    assert document["actor"] == "supervisor"
    assert document["note"] == f"{DEFER_NOTE}; call spike"


def test_agent_request_has_no_break_id() -> None:
    document = build_break_action(AGENT_ACTIONS["request"], "agent-007", TS)

    assert "break_id" not in document
    assert document["action"] == "request"
    assert document["actor"] == "agent"
    assert validate_break_action(document).agent_id == "agent-007"


def test_event_ids_are_unique() -> None:
    button = SUPERVISOR_ACTIONS["cancel"]

    ids = {build_break_action(button, "agent-007", TS, break_id="brk-1")["event_id"] for _ in range(100)}

    assert len(ids) == 100


def test_accept_without_break_id_is_invalid() -> None:
    with pytest.raises(ValueError, match="needs the break_id"):
        build_break_action(AGENT_ACTIONS["accept"], "agent-007", TS)


@pytest.mark.parametrize(
    ("name", "status"),
    [("approve", "suggested"), ("approve", "deferred"), ("defer", "suggested"), ("cancel", "started")],
)
def test_supervisor_button_applies(name: str, status: str) -> None:
    check_action(SUPERVISOR_ACTIONS[name], "agent-007", "brk-1", status)


@pytest.mark.parametrize(
    ("name", "status"),
    [("approve", "accepted"), ("approve", "started"), ("defer", "accepted"), ("cancel", None)],
)
def test_supervisor_button_rejected(name: str, status: str | None) -> None:
    with pytest.raises(ActionRejected, match="brk-1 of agent agent-007"):
        check_action(SUPERVISOR_ACTIONS[name], "agent-007", "brk-1", status)


def test_agent_cannot_accept_deferred_break() -> None:
    with pytest.raises(ActionRejected, match="is deferred, so 'accept' cannot apply"):
        check_action(AGENT_ACTIONS["accept"], "agent-007", "brk-1", "deferred")


def test_request_rejected_while_break_open() -> None:
    with pytest.raises(ActionRejected, match="already has break brk-1 open"):
        check_action(AGENT_ACTIONS["request"], "agent-007", "brk-1", "suggested")


def test_engine_sink_submits_to_engine() -> None:
    engine = Engine(load_config())
    sink = engine_sink(engine)

    sink(build_break_action(AGENT_ACTIONS["request"], "agent-007", TS))
    engine.flush()

    transitions = engine.drain_transitions()
    assert [(tr.type, tr.agent_id, tr.trigger) for tr in transitions] == [("suggested", "agent-007", "agent_request")]


def test_engine_sink_dead_letters_invalid_document() -> None:
    engine = Engine(load_config())

    engine_sink(engine)({"event_id": "e-1", "agent_id": "agent-007", "ts": "2026-03-02T09:15:04Z", "action": "nap"})

    dead_letters = engine.drain_dead_letters()
    assert [dl.reason for dl in dead_letters] == ["invalid_event"]
    assert "action 'nap' is not valid" in dead_letters[0].error


# Tokens ----------------------------------------------------------------------------------------


def test_agent_token_is_stable_and_per_agent() -> None:
    token = "supervisor-token-0123456789"

    assert agent_token(token, "agent-001") == agent_token(token, "agent-001")
    assert agent_token(token, "agent-001") != agent_token(token, "agent-002")
    assert agent_token(token, "agent-001") != agent_token("supervisor-token-0123456780", "agent-001")
    assert len(agent_token(token, "agent-001")) == 43


def test_tokens_match_needs_exact_token() -> None:
    assert tokens_match("abc", "abc")
    assert not tokens_match("abd", "abc")
    assert not tokens_match("", "abc")
    assert not tokens_match(None, "abc")
    assert not tokens_match("é", "abc")


def test_resolve_token_prefers_option_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, "token-from-the-environment")

    assert resolve_token("token-from-the-option-0") == ("token-from-the-option-0", False)
    assert resolve_token(None) == ("token-from-the-environment", False)


def test_resolve_token_generates_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)

    first, generated = resolve_token(None)
    second, _ = resolve_token(None)

    assert generated is True
    assert len(first) >= 40
    assert first != second


def test_short_token_is_rejected_without_echo() -> None:
    with pytest.raises(TokenError) as caught:
        resolve_token("short-secret")

    assert "12 characters, fewer than 16" in str(caught.value)
    assert "short-secret" not in str(caught.value)


def test_token_with_semicolon_is_rejected() -> None:
    with pytest.raises(TokenError, match="semicolons"):
        resolve_token("token-with;semicolon-inside")


def test_agent_token_command_prints_link(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, "supervisor-token-0123456789")

    status = main(["agent-token", "agent-007", "--http-port", "9999"])

    expected = agent_link("http://127.0.0.1:9999", "supervisor-token-0123456789", "agent-007")
    assert status == 0
    assert capsys.readouterr().out == expected + "\n"
    assert expected.startswith("http://127.0.0.1:9999/agent/agent-007?token=")


def test_agent_token_command_needs_token(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)

    status = main(["agent-token", "agent-007"])

    assert status == 2
    assert "no token; pass --token or set AGENTLOAD_TOKEN" in capsys.readouterr().err


def run_agentload(*args: str, token: str | None = None) -> subprocess.CompletedProcess:
    # A subprocess, because the runtime registers its metrics once per process.
    env = {key: value for key, value in os.environ.items() if key != TOKEN_ENV}
    env["PYTHONPATH"] = str(REPO_ROOT)
    if token is not None:
        env[TOKEN_ENV] = token
    command = [sys.executable, "-m", "streams.cli", "run", "--duration", "0.3", "--summary-every", "0", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def test_run_prints_generated_token() -> None:
    port = free_port()

    result = run_agentload("--http-port", str(port))

    lines = result.stdout.splitlines()
    floor_line = next(line for line in lines if line.startswith("floor view: "))
    token = floor_line.split("?token=", 1)[1]
    assert result.returncode == 0
    assert floor_line == f"floor view: http://127.0.0.1:{port}/?token={token}"
    assert len(token) == 43
    assert f"agent view of agent-001: {agent_link(f'http://127.0.0.1:{port}', token, 'agent-001')}" in lines
    assert token not in result.stderr


def test_run_keeps_given_token_private() -> None:
    port = free_port()
    token = "given-token-0123456789abcdef"

    result = run_agentload("--http-port", str(port), token=token)

    assert result.returncode == 0
    assert f"floor view: http://127.0.0.1:{port}/?token=<the token from --token or AGENTLOAD_TOKEN>" in result.stdout
    assert token not in result.stdout + result.stderr


def test_run_rejects_short_token() -> None:
    result = run_agentload("--no-http", "--token", "too-short")

    assert result.returncode == 2
    assert "9 characters, fewer than 16" in result.stderr
    assert "too-short" not in result.stderr
