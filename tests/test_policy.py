"""The break policy: levels with hysteresis, triggers, gating, timers and the break lifecycle.

Most tests use a configuration whose only strain is customer abuse (55 points) and threats
(75 points), so that loads are plain exponential decays that the test can compute.
"""

from __future__ import annotations

import math

import pytest

from alerts.policy import recommended_break_s
from features.call_factors import HOSTILITY
from streams.config import load_config
from streams.state import AMBER, GREEN, RED, AgentState
from tests.helpers import (
    agent_state,
    at,
    break_action,
    call_ended,
    call_started,
    flag,
    kinds,
    run_engine,
    sentiment,
)

ONLY_HOSTILITY = {
    "factors": {
        "handle_time_points": 0.0,
        "back_to_back_points": 0.0,
        "time_since_recovery_points_per_h": 0.0,
        "abuse_points": 55.0,
        "threat_points": 75.0,
    }
}


def hostility_config(**breaks):
    overrides = {section: dict(values) for section, values in ONLY_HOSTILITY.items()}
    if breaks:
        overrides["breaks"] = breaks
    return load_config(overrides=overrides)


def decayed(load: float, seconds: float, half_life_s: float) -> float:
    return load * 2.0 ** (-seconds / half_life_s)


def threat_call(agent: str, call: str, start_s: float, end_s: float, team: str | None = None) -> list[dict]:
    """A call whose customer threatens the agent a minute in: 75 points, straight to red."""
    return [
        call_started(agent, call, start_s, team=team),
        flag(agent, call, start_s + 60, "threat"),
        call_ended(agent, call, end_s),
    ]


def suggested_break_id(transitions, agent: str = "a") -> str:
    return next(t.break_id for t in transitions if t.agent_id == agent and t.type == "suggested")


# Levels -----------------------------------------------------------------------------------------


def test_levels_enter_at_thresholds():
    params = load_config().params("default")
    agent = AgentState("a", "default", params, 0.0)

    agent.add(HOSTILITY, 49.5, 0.0)
    assert agent.level == GREEN
    agent.add(HOSTILITY, 0.5, 0.0)
    assert agent.level == AMBER
    assert agent.elevated_since == 0.0
    assert agent.add(HOSTILITY, 19.5, 0.0) is False
    assert agent.level == AMBER
    assert agent.add(HOSTILITY, 0.5, 0.0) is True
    assert agent.level == RED
    assert agent.red_entered_at == 0.0


def test_levels_leave_ten_below_entry():
    params = load_config().params("default")
    agent = AgentState("a", "default", params, 0.0)
    agent.add(HOSTILITY, 70.0, 0.0)
    agent.set_state("break", 0.0)
    leave_red_s = 300.0 * math.log2(70.0 / 60.0)

    agent.advance(math.floor(leave_red_s))
    assert agent.level == RED
    agent.advance(math.ceil(leave_red_s))
    assert agent.level == AMBER
    assert agent.level_since == pytest.approx(leave_red_s, rel=1e-12)

    # Back up to 69: above red's exit but below its entry, so the agent stays amber.
    agent.add(HOSTILITY, 69.0 - agent.load, agent.t)
    assert agent.level == AMBER

    leave_amber_s = agent.t + 300.0 * math.log2(69.0 / 40.0)
    agent.advance(leave_amber_s - 1.0)
    assert agent.level == AMBER
    agent.advance(leave_amber_s + 1.0)
    assert agent.level == GREEN
    assert agent.level_since == pytest.approx(leave_amber_s, rel=1e-12)
    assert agent.elevated_since is None


def test_levels_stay_green_below_amber_entry():
    params = load_config().params("default")
    agent = AgentState("a", "default", params, 0.0)
    agent.add(HOSTILITY, 45.0, 0.0)
    assert agent.level == GREEN
    assert agent.elevated_since is None


def test_level_times_do_not_depend_on_step_size():
    params = load_config().params("default")
    coarse = AgentState("a", "default", params, 0.0)
    fine = AgentState("a", "default", params, 0.0)
    for agent in (coarse, fine):
        agent.add(HOSTILITY, 80.0, 0.0)
        agent.set_state("available", 0.0)

    coarse.advance(3600.0)
    for second in range(1, 3601):
        fine.advance(float(second))

    assert coarse.level == fine.level == GREEN
    assert coarse.amber_s == pytest.approx(fine.amber_s, rel=1e-9)
    assert coarse.red_s == pytest.approx(fine.red_s, rel=1e-9)
    # Red until 60 points (micro-gap first, then a 900 s half-life), amber until 40.
    red_s = 60.0 + 900.0 * math.log2(decayed(80.0, 60.0, 7200.0) / 60.0)
    assert coarse.red_s == pytest.approx(red_s, rel=1e-9)


# Triggers ---------------------------------------------------------------------------------------


def test_red_mid_call_suggests_at_call_end():
    config = hostility_config()
    transitions, dead, engine = run_engine(
        [call_started("a", "c1", 0), flag("a", "c1", 60, "threat")], config=config
    )
    assert transitions == []
    assert engine.agents["a"].level == RED

    transitions, dead, _ = run_engine([call_ended("a", "c1", 600)], engine=engine)

    assert dead == []
    assert kinds(transitions) == [("a", "suggested")]
    offer = transitions[0]
    assert at(offer) == 600.0
    assert offer.trigger == "red"
    assert offer.level == "red"
    assert offer.load == pytest.approx(decayed(75.0, 540.0, 7200.0), rel=1e-12)
    assert offer.offer_expires_at - offer.time == 300.0
    assert offer.recommended_break_s == 300.0
    assert offer.reasons == [
        {"factor": "hostility", "share": 1.0, "detail": "abuse or threats from customers: 71.2 of 71.2 load points"}
    ]
    assert offer.reason_code == "RECOVERY_BREAK"


def test_red_while_available_suggests_at_once():
    transitions, _, _ = run_engine(
        [call_started("a", "c1", 0), call_ended("a", "c1", 100), flag("a", "c1", 130, "threat")],
        config=hostility_config(),
    )
    assert kinds(transitions) == [("a", "suggested")]
    assert at(transitions[0]) == 130.0
    assert transitions[0].trigger == "red"


def test_hostile_streak_of_two_calls_suggests():
    transitions, _, _ = run_engine(
        [
            call_started("a", "c1", 0),
            flag("a", "c1", 60, "abuse"),
            call_ended("a", "c1", 300),
            call_started("a", "c2", 400),
            flag("a", "c2", 460, "abuse"),
            call_ended("a", "c2", 700),
        ]
    )
    assert kinds(transitions) == [("a", "suggested")]
    assert at(transitions[0]) == 700.0
    assert transitions[0].trigger == "hostile_streak"
    assert transitions[0].level == "green"


def test_hostile_streak_counts_strongly_negative_sentiment():
    transitions, _, _ = run_engine(
        [
            call_started("a", "c1", 0),
            sentiment("a", "c1", 60, -0.7),
            call_ended("a", "c1", 300),
            call_started("a", "c2", 400),
            sentiment("a", "c2", 460, -0.6),
            call_ended("a", "c2", 700),
        ]
    )
    assert kinds(transitions) == [("a", "suggested")]
    assert transitions[0].trigger == "hostile_streak"


def test_hostile_calls_further_apart_than_window_do_not_trigger():
    transitions, _, _ = run_engine(
        [
            call_started("a", "c1", 0),
            flag("a", "c1", 60, "abuse"),
            call_ended("a", "c1", 300),
            call_started("a", "c2", 1200),
            flag("a", "c2", 1261, "abuse"),
            call_ended("a", "c2", 1500),
        ]
    )
    assert transitions == []


def test_hostile_flags_in_one_call_are_one_hostile_call():
    transitions, _, engine = run_engine(
        [
            call_started("a", "c1", 0),
            flag("a", "c1", 60, "abuse"),
            flag("a", "c1", 70, "abuse"),
            flag("a", "c1", 80, "threat"),
            call_ended("a", "c1", 300),
        ]
    )
    assert transitions == []
    # Abuse counts once per call, a threat once more.
    contributions = engine.agents["a"].contributions()
    assert contributions[HOSTILITY] == pytest.approx(
        decayed(15.0, 240.0, 7200.0) + decayed(25.0, 220.0, 7200.0), rel=1e-12
    )


def test_amber_held_thirty_minutes_suggests():
    transitions, _, _ = run_engine(
        [
            call_started("a", "c1", 0),
            flag("a", "c1", 60, "abuse"),
            call_ended("a", "c1", 1500),
            agent_state("a", "acw", 1500),
        ],
        config=hostility_config(),
        until_s=1900,
    )
    assert kinds(transitions) == [("a", "suggested")]
    offer = transitions[0]
    assert at(offer) == 1860.0
    assert offer.trigger == "amber_held"
    assert offer.level == "amber"
    assert offer.load == pytest.approx(decayed(decayed(55.0, 1440.0, 7200.0), 360.0, 1800.0), rel=1e-12)


def test_amber_held_met_mid_call_suggests_at_call_end():
    transitions, _, _ = run_engine(
        [call_started("a", "c1", 0), flag("a", "c1", 60, "abuse"), call_ended("a", "c1", 2000)],
        config=hostility_config(),
    )
    assert kinds(transitions) == [("a", "suggested")]
    assert at(transitions[0]) == 2000.0
    assert transitions[0].trigger == "amber_held"


def test_amber_left_before_thirty_minutes_does_not_trigger():
    transitions, _, engine = run_engine(
        [call_started("a", "c1", 0), flag("a", "c1", 60, "abuse"), call_ended("a", "c1", 300)],
        config=hostility_config(),
        until_s=2000,
    )
    assert transitions == []
    assert engine.agents["a"].level == GREEN


# Recommended length ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("load", "expected_s"),
    [
        (0.0, 120.0),
        (40.0, 120.0),
        # 300 s * log2(45 / 40) is 51 s: one minute, raised to the 2-minute floor.
        (45.0, 120.0),
        # Exactly 5 minutes to drain to 40 at a 300 s half-life.
        (80.0, 300.0),
        (80.5, 360.0),
        (160.0, 600.0),
        (10_000.0, 900.0),
    ],
)
def test_recommended_break_whole_minutes_clamped(load, expected_s):
    params = load_config().params("default")
    assert recommended_break_s(params, load) == expected_s


# Gating -----------------------------------------------------------------------------------------


def test_team_at_limit_defers_then_offers_when_place_frees():
    config = hostility_config()
    first, _, engine = run_engine(
        threat_call("a1", "c1", 0, 120, team="t") + threat_call("a2", "c2", 0, 180, team="t"), config=config
    )
    assert kinds(first) == [("a1", "suggested"), ("a2", "deferred")]
    deferred = first[1]
    assert at(deferred) == 180.0
    assert deferred.note == (
        "team t is at its limit of 1 agent on recovery break (15% of 2 logged in); offered when a place frees"
    )
    assert deferred.recommended_break_s == 300.0

    second, dead, _ = run_engine(
        [break_action("a1", "decline", 200, first[0].break_id)], engine=engine
    )
    assert dead == []
    assert kinds(second) == [("a1", "declined"), ("a2", "suggested")]
    offer = second[1]
    assert at(offer) == 200.0
    assert offer.break_id == deferred.break_id
    assert offer.note == "a place on recovery break freed"
    assert offer.offer_expires_at - offer.time == 300.0


def test_gating_is_per_team():
    transitions, _, _ = run_engine(
        threat_call("a1", "c1", 0, 120, team="t") + threat_call("a2", "c2", 0, 180, team="u"),
        config=hostility_config(),
    )
    assert kinds(transitions) == [("a1", "suggested"), ("a2", "suggested")]


def test_deferred_break_expires_after_max_wait():
    transitions, _, _ = run_engine(
        threat_call("a1", "c1", 0, 120, team="t") + threat_call("a2", "c2", 0, 180, team="t"),
        config=hostility_config(deferred_max_s=100.0, offer_expiry_s=900.0),
        until_s=400,
    )
    assert kinds(transitions) == [("a1", "suggested"), ("a2", "deferred"), ("a2", "expired")]
    expired = transitions[2]
    assert at(expired) == 280.0
    assert expired.note == "no place on recovery break freed in time"
    assert expired.actor == "agentload"


# Timers, cooldown, open breaks ------------------------------------------------------------------


def test_offer_expires_after_five_minutes():
    transitions, _, engine = run_engine(threat_call("a", "c1", 0, 120), config=hostility_config(), until_s=1000)
    assert kinds(transitions) == [("a", "suggested"), ("a", "expired")]
    expired = transitions[1]
    assert at(expired) == 420.0
    assert expired.actor == "agentload"
    assert expired.note == "offer not answered in time"
    assert expired.break_id == transitions[0].break_id
    assert engine.agents["a"].break_id is None


def test_offer_not_expired_before_five_minutes():
    transitions, _, _ = run_engine(threat_call("a", "c1", 0, 120), config=hostility_config(), until_s=419)
    assert kinds(transitions) == [("a", "suggested")]


def test_cooldown_suppresses_then_allows_suggestion():
    config = hostility_config(amber_hold_s=86_400.0)
    first, _, engine = run_engine(threat_call("a", "c1", 0, 120), config=config)
    rest, _, _ = run_engine(
        [break_action("a", "decline", 130, first[0].break_id)]
        # Red again 9 minutes after the offer: inside the 20-minute cooldown.
        + threat_call("a", "c2", 600, 700)
        # Red again 50 minutes after it: outside.
        + threat_call("a", "c3", 3000, 3100),
        engine=engine,
    )
    # Still red when the cooldown ends, the agent is offered a break then; the offer expires.
    assert kinds(first + rest) == [
        ("a", "suggested"),
        ("a", "declined"),
        ("a", "suggested"),
        ("a", "expired"),
        ("a", "suggested"),
    ]
    assert [at(transition) for transition in rest] == [130.0, 1320.0, 1620.0, 3100.0]
    assert [transition.trigger for transition in rest[1::2]] == ["red", "red"]
    assert engine.policy.suppressed == 1


def test_red_held_through_cooldown_is_offered_once_at_its_end():
    config = hostility_config(amber_hold_s=86_400.0)
    first, _, engine = run_engine(threat_call("a", "c1", 0, 120), config=config)
    rest, _, _ = run_engine(
        [break_action("a", "decline", 130, first[0].break_id)] + threat_call("a", "c2", 600, 700),
        engine=engine,
        until_s=7200,
    )
    assert kinds(rest) == [("a", "declined"), ("a", "suggested"), ("a", "expired")]
    assert at(rest[1]) == 1320.0


def test_no_suggestion_while_break_offered():
    transitions, _, engine = run_engine(
        threat_call("a", "c1", 0, 120) + threat_call("a", "c2", 150, 250),
        config=hostility_config(),
        until_s=400,
    )
    assert kinds(transitions) == [("a", "suggested")]
    assert engine.policy.suppressed == 1


def test_no_suggestion_while_break_running():
    first, _, engine = run_engine(threat_call("a", "c1", 0, 120), config=hostility_config())
    break_id = suggested_break_id(first)
    rest, _, _ = run_engine(
        # The agent took a call while the offer stood and starts the break from the desk; a threat
        # on that call makes a hostile streak with the first call while the break is running.
        [call_started("a", "c2", 125), break_action("a", "start", 130, break_id), flag("a", "c2", 140, "threat")],
        engine=engine,
    )
    assert kinds(rest) == [("a", "accepted"), ("a", "started")]
    assert engine.policy.suppressed == 1


# Break actions ----------------------------------------------------------------------------------


def requested(agent: str = "a"):
    """An engine in which available agent ``agent`` has asked for a break at 10 s."""
    transitions, dead, engine = run_engine(
        [agent_state(agent, "available", 0), break_action(agent, "request", 10)]
    )
    assert dead == []
    assert kinds(transitions) == [(agent, "suggested")]
    assert transitions[0].trigger == "agent_request"
    assert transitions[0].recommended_break_s == 120.0
    return transitions[0].break_id, engine


def test_request_accept_start_complete():
    break_id, engine = requested()

    transitions, dead, _ = run_engine(
        [
            break_action("a", "accept", 20, break_id),
            break_action("a", "start", 30, break_id),
            break_action("a", "complete", 200, break_id, actor="supervisor"),
        ],
        engine=engine,
    )

    assert dead == []
    assert [(t.type, at(t), t.actor) for t in transitions] == [
        ("accepted", 20.0, "agent"),
        ("started", 30.0, "agent"),
        ("completed", 200.0, "supervisor"),
    ]
    assert [t.event_id for t in transitions] == [f"{break_id}-2-accepted", f"{break_id}-3-started", f"{break_id}-4-completed"]
    assert engine.agents["a"].state == "available"
    assert engine.agents["a"].break_id is None


def test_start_on_running_break_sets_agent_on_break():
    break_id, engine = requested()
    run_engine([break_action("a", "start", 30, break_id)], engine=engine)
    assert engine.agents["a"].state == "break"


def test_request_decline():
    break_id, engine = requested()
    transitions, dead, _ = run_engine([break_action("a", "decline", 20, break_id)], engine=engine)
    assert dead == []
    assert kinds(transitions) == [("a", "declined")]


def test_request_cancel():
    break_id, engine = requested()
    transitions, dead, _ = run_engine(
        [break_action("a", "accept", 20, break_id), break_action("a", "cancel", 30, break_id, actor="wfm")],
        engine=engine,
    )
    assert dead == []
    assert [(t.type, t.actor) for t in transitions] == [("accepted", "agent"), ("cancelled", "wfm")]


@pytest.mark.parametrize(
    ("actions", "expected"),
    [
        (["accept", "accept"], ["accepted"]),
        (["start", "start", "accept"], ["accepted", "started"]),
        (["start", "complete", "complete"], ["accepted", "started", "completed"]),
        (["decline", "decline"], ["declined"]),
        (["cancel", "cancel"], ["cancelled"]),
        (["accept", "cancel", "cancel"], ["accepted", "cancelled"]),
    ],
)
def test_repeated_action_changes_nothing(actions, expected):
    break_id, engine = requested()
    messages = [break_action("a", action, 20 + index, break_id) for index, action in enumerate(actions)]
    transitions, dead, _ = run_engine(messages, engine=engine)
    assert dead == []
    assert [t.type for t in transitions] == expected


def test_repeated_request_while_open_changes_nothing():
    break_id, engine = requested()
    transitions, dead, _ = run_engine([break_action("a", "request", 20)], engine=engine)
    assert transitions == []
    assert dead == []
    assert engine.agents["a"].break_id == break_id


def test_same_action_event_twice_changes_nothing():
    break_id, engine = requested()
    accept = break_action("a", "accept", 20, break_id)
    transitions, dead, _ = run_engine([accept, accept], engine=engine)
    assert [t.type for t in transitions] == ["accepted"]
    assert engine.counts[("break_action", "duplicate")] == 1


def test_accept_after_decline_is_dead_letter():
    break_id, engine = requested()
    transitions, dead, _ = run_engine(
        [break_action("a", "decline", 20, break_id), break_action("a", "accept", 30, break_id)], engine=engine
    )
    assert kinds(transitions) == [("a", "declined")]
    assert [d.reason for d in dead] == ["invalid_action"]
    assert dead[0].error == (
        f"break {break_id!r} of agent 'a' has ended (declined), so 'accept' cannot apply; send 'request' for a new one"
    )


def test_complete_before_start_is_dead_letter():
    break_id, engine = requested()
    transitions, dead, _ = run_engine([break_action("a", "complete", 20, break_id)], engine=engine)
    assert transitions == []
    assert [d.reason for d in dead] == ["invalid_action"]
    assert dead[0].error == (
        f"break {break_id} of agent a is suggested, so 'complete' cannot apply; send 'accept', 'decline' or 'cancel'"
    )


def test_action_by_another_agent_is_dead_letter():
    break_id, engine = requested()
    transitions, dead, _ = run_engine([break_action("b", "accept", 20, break_id)], engine=engine)
    assert transitions == []
    assert [d.reason for d in dead] == ["invalid_action"]
    assert f"break {break_id!r} belongs to agent 'a', not 'b'" in dead[0].error


# Agent states and timers of the lifecycle --------------------------------------------------------


def test_acd_break_state_starts_break_and_leaving_completes_it():
    break_id, engine = requested()
    transitions, dead, _ = run_engine(
        [agent_state("a", "break", 20), agent_state("a", "available", 150)], engine=engine
    )
    assert dead == []
    assert [(t.type, at(t), t.actor) for t in transitions] == [
        ("accepted", 20.0, "acd"),
        ("started", 20.0, "acd"),
        ("completed", 150.0, "acd"),
    ]


def test_acd_off_queue_keeps_break_running():
    break_id, engine = requested()
    transitions, _, _ = run_engine(
        [agent_state("a", "break", 20), agent_state("a", "off_queue", 60), agent_state("a", "available", 150)],
        engine=engine,
    )
    assert [(t.type, at(t)) for t in transitions] == [("accepted", 20.0), ("started", 20.0), ("completed", 150.0)]


def test_call_during_break_completes_it():
    break_id, engine = requested()
    transitions, _, _ = run_engine(
        [break_action("a", "start", 20, break_id), call_started("a", "c1", 90)], engine=engine
    )
    assert [(t.type, at(t), t.note) for t in transitions] == [
        ("accepted", 20.0, None),
        ("started", 20.0, None),
        ("completed", 90.0, "agent took a call"),
    ]


def test_offline_cancels_break():
    break_id, engine = requested()
    transitions, _, engine = run_engine(
        [break_action("a", "start", 20, break_id), agent_state("a", "offline", 60)], engine=engine
    )
    assert [(t.type, at(t), t.actor, t.note) for t in transitions] == [
        ("accepted", 20.0, "agent", None),
        ("started", 20.0, "agent", None),
        ("cancelled", 60.0, "acd", "agent logged off"),
    ]
    assert engine.teams["default"].occupying == 0


def test_offline_cancels_offer():
    break_id, engine = requested()
    transitions, _, _ = run_engine([agent_state("a", "offline", 60)], engine=engine)
    assert [(t.type, at(t)) for t in transitions] == [("cancelled", 60.0)]


def test_accepted_break_not_started_expires():
    break_id, engine = requested()
    transitions, _, _ = run_engine(
        [break_action("a", "accept", 20, break_id)], engine=engine, until_s=1000
    )
    assert [(t.type, at(t), t.note) for t in transitions] == [
        ("accepted", 20.0, None),
        ("expired", 620.0, "accepted break not started in time"),
    ]


def test_started_break_completes_after_length_and_grace():
    break_id, engine = requested()
    transitions, _, engine = run_engine(
        [break_action("a", "start", 20, break_id)], engine=engine, until_s=2000
    )
    # A 2-minute break and 5 minutes of grace.
    assert [(t.type, at(t), t.note) for t in transitions] == [
        ("accepted", 20.0, None),
        ("started", 20.0, None),
        ("completed", 440.0, "break ran its recommended length and grace"),
    ]
    assert engine.agents["a"].state == "available"


def test_unknown_break_action_is_dead_letter():
    transitions, dead, _ = run_engine([agent_state("a", "available", 0), break_action("a", "accept", 10, "brk-nope")])
    assert transitions == []
    assert [d.reason for d in dead] == ["unknown_break"]


def test_trigger_pending_at_log_off_is_dropped():
    transitions, _, engine = run_engine(
        [
            call_started("a", "c1", 0),
            flag("a", "c1", 10, "threat"),
            flag("a", "c1", 20, "abuse"),
            sentiment("a", "c1", 30, -1.0, window_s=600.0),
            agent_state("a", "offline", 60),
        ],
        until_s=600,
    )
    assert engine.agents["a"].level == 2
    assert transitions == []
    assert engine.agents["a"].pending_trigger is None
    assert engine.teams["default"].logged_in == 0
