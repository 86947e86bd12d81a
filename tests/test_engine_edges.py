"""Edge cases of the engine and policy: recovery through breaks, lost call ends, unknown agents."""

from __future__ import annotations

from streams.config import load_config
from streams.engine import MAX_HANDLE_TIME_S
from streams.events import decode
from streams.state import AMBER
from tests.helpers import (
    T0,
    agent_state,
    break_action,
    call_ended,
    call_started,
    flag,
    kinds,
    run_engine,
    sentiment,
)

# Hostility alone decides, so each test controls the load exactly.
HOSTILE = {
    "factors": {
        "handle_time_points": 0.0,
        "back_to_back_points": 0.0,
        "time_since_recovery_points_per_h": 0.0,
        "threat_points": 60.0,
        "abuse_points": 15.0,
    }
}


def requested_and_started(length_s: float):
    """Return transitions and engine after an agent's request, accepted and started by actions."""
    messages = [
        call_started("a", "c1", 0),
        call_ended("a", "c1", 60),
        break_action("a", "request", 100),
    ]
    transitions, _, engine = run_engine(messages)
    break_id = transitions[0].break_id
    rest, dead, _ = run_engine(
        [break_action("a", "start", 120, break_id), break_action("a", "complete", 120 + length_s, break_id)],
        engine=engine,
    )
    assert dead == []
    return transitions + rest, engine


def test_completed_recovery_break_counts_as_recovery():
    transitions, engine = requested_and_started(150)
    agent = engine.agents["a"]
    assert kinds(transitions) == [("a", "suggested"), ("a", "accepted"), ("a", "started"), ("a", "completed")]
    assert agent.calls_since_break == 0
    assert agent.last_recovery_end == T0 + 270
    assert agent.state == "available"


def test_break_end_timer_leaves_acd_break_state_alone():
    transitions, _, engine = run_engine([call_started("a", "c1", 0), call_ended("a", "c1", 60), break_action("a", "request", 100)])
    break_id = transitions[0].break_id
    rest, _, _ = run_engine(
        [break_action("a", "accept", 110, break_id), agent_state("a", "break", 120)], engine=engine, until_s=4000
    )
    assert kinds(rest)[-1] == ("a", "completed")
    # The ACD still reports the agent on break; only the ACD ends that state.
    assert engine.agents["a"].state == "break"


def test_amber_held_timer_survives_short_off_queue():
    # Load that hardly drains, reaching amber but not red.
    config = load_config(
        overrides={
            "factors": {**HOSTILE["factors"], "threat_points": 40.0},
            "load": {"half_life_available_s": 604_800.0, "half_life_break_s": 604_800.0},
        }
    )
    messages = [
        call_started("a", "c1", 0),
        flag("a", "c1", 10, "threat"),
        flag("a", "c1", 20, "abuse"),
        call_ended("a", "c1", 100),
        # Off queue for 90 s across the moment amber has been held for 30 minutes.
        agent_state("a", "off_queue", 20 + 1800 - 30),
        agent_state("a", "available", 20 + 1800 + 60),
    ]
    transitions, _, engine = run_engine(messages, config=config, until_s=20 + 1800 + 120)
    assert engine.agents["a"].level == AMBER
    assert kinds(transitions) == [("a", "suggested")]
    assert transitions[0].trigger == "amber_held"
    assert transitions[0].time == T0 + 20 + 1800 + 60


def test_call_without_end_is_closed_at_limit_and_pending_offer_delivered():
    config = load_config(overrides=HOSTILE)
    messages = [
        call_started("a", "c1", 0),
        flag("a", "c1", 10, "threat"),
        flag("a", "c1", 20, "abuse"),
        sentiment("a", "c1", 30, -1.0, window_s=600.0),
    ]
    transitions, _, engine = run_engine(messages, config=config, until_s=MAX_HANDLE_TIME_S + 60)
    assert engine.calls_closed_at_limit == 1
    assert engine.agents["a"].call is None
    assert kinds(transitions)[0] == ("a", "suggested")
    assert transitions[0].time == T0 + MAX_HANDLE_TIME_S


def test_events_of_unknown_agent_leave_no_agent_behind():
    _, dead, engine = run_engine(
        [call_ended("ghost", "c9", 0), flag("ghost", "c9", 1, "abuse"), break_action("ghost", "accept", 2, "brk-x")]
    )
    assert [letter.reason for letter in dead] == ["unknown_call", "unknown_call", "unknown_break"]
    assert "who is not known yet" in dead[0].error
    assert "ghost" not in engine.agents
    assert engine.teams == {}


def test_deferred_break_is_offered_after_the_call_ends():
    config = load_config(overrides={**HOSTILE, "breaks": {"team_break_share": 0.0, "min_concurrent_breaks": 1}})
    first = [call_started("a", "c1", 0), flag("a", "c1", 10, "threat"), flag("a", "c1", 11, "abuse"), call_ended("a", "c1", 60)]
    second = [call_started("b", "c2", 0), flag("b", "c2", 10, "threat"), flag("b", "c2", 11, "abuse"), call_ended("b", "c2", 70)]
    transitions, _, engine = run_engine(first + second, config=config)
    assert kinds(transitions) == [("a", "suggested"), ("b", "deferred")]
    rest, _, _ = run_engine(
        [call_started("b", "c3", 100), break_action("a", "decline", 120, transitions[0].break_id), call_ended("b", "c3", 400)],
        engine=engine,
    )
    # The place freed at 120 s while b was on a call; b is offered the break when the call ends.
    assert kinds(rest) == [("a", "declined"), ("b", "suggested")]
    assert rest[1].time == T0 + 400


def test_call_event_with_channel_field_stays_a_call_event():
    events, invalid = decode(
        None,
        '{"event_id":"b18","type":"call_started","agent_id":"a","ts":"2026-03-02T09:00:00Z","call_id":"c","channel":"voice"}',
    )
    assert invalid == []
    assert events[0].type == "call_started"


def test_huge_integer_is_invalid_not_a_crash():
    value = '{"event_id":"x","type":"sentiment","agent_id":"a","ts":"2026-03-02T09:00:00Z","call_id":"c",' \
            '"speaker":"customer","score":' + "9" * 400 + "}"
    events, invalid = decode("call-events", value)
    assert events == []
    assert "score must be a finite number" in invalid[0].error


def test_timestamp_beyond_year_9998_is_invalid():
    value = '{"event_id":"r1","action":"request","agent_id":"a1","ts":"9999-12-31T23:59:59-23:59","actor":"agent"}'
    _, invalid = decode("break-actions", value)
    assert invalid[0].error == (
        "ts '9999-12-31T23:59:59-23:59' is outside the years 1970 to 9998 in UTC; check the sender's clock"
    )


def test_lowercase_rfc3339_timestamp_is_valid():
    value = '{"event_id":"s1","type":"agent_state","agent_id":"a","ts":"2026-03-02t09:00:02z","state":"available"}'
    events, invalid = decode("call-events", value)
    assert invalid == []
    assert events[0].ts == T0 + 3602
