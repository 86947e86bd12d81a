"""Properties the load index promises for any stream of events: duplicates and reordering within
the lateness bound change nothing, strain never lowers load, load drains at the state's rate, and
an alert's reasons are the exact split of the load."""

from __future__ import annotations

import math
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.policy import make_break_id, reasons_for
from features.call_factors import FACTOR_DETAILS, FACTORS, HOSTILITY
from streams.config import load_config
from streams.engine import Engine
from streams.events import parse_ts
from tests.helpers import (
    T0,
    agent_state,
    break_action,
    call_ended,
    call_started,
    flag,
    hold_ended,
    hold_started,
    run_engine,
    sentiment,
    transfer,
)

CONFIG = load_config()
LATENESS_S = CONFIG.runtime.lateness_s
PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


# Random floors --------------------------------------------------------------------------------


@st.composite
def timelines(draw, max_agents: int = 3, max_calls: int = 6) -> list[dict]:
    """A few agents' shifts: calls with holds, flags, sentiment and transfers, state changes and
    break requests with the replies to them, in event-time order. Times are whole seconds, so ties
    between events are common."""
    events: list[dict] = []
    serial = 0

    def next_id(agent: str) -> str:
        nonlocal serial
        serial += 1
        return f"{agent}-{serial}"

    for index in range(draw(st.integers(1, max_agents))):
        agent = f"agent{index}"
        team = draw(st.sampled_from(["t1", "t2"]))
        t = draw(st.integers(0, 120))
        events.append(agent_state(agent, "available", t, event_id=next_id(agent), team=team))
        for number in range(draw(st.integers(1, max_calls))):
            call = f"{agent}-call{number}"
            length = draw(st.integers(20, 900))
            events.append(call_started(agent, call, t, event_id=next_id(agent)))
            for _ in range(draw(st.integers(0, 3))):
                offset = draw(st.integers(1, length - 1))
                kind = draw(st.sampled_from(["abuse", "threat", "escalation_request", "sentiment", "hold", "transfer"]))
                if kind == "sentiment":
                    score = draw(st.sampled_from([-0.9, -0.6, -0.3, 0.0, 0.4]))
                    events.append(sentiment(agent, call, t + offset, score, event_id=next_id(agent)))
                elif kind == "hold":
                    end = draw(st.integers(offset, length))
                    events.append(hold_started(agent, call, t + offset, event_id=next_id(agent)))
                    events.append(hold_ended(agent, call, t + end, event_id=next_id(agent)))
                elif kind == "transfer":
                    events.append(transfer(agent, call, t + offset, event_id=next_id(agent)))
                else:
                    events.append(flag(agent, call, t + offset, kind, event_id=next_id(agent)))
            t += length
            disposition = draw(st.sampled_from([None, "resolved", "escalated"]))
            events.append(call_ended(agent, call, t, disposition=disposition, event_id=next_id(agent)))

            after = draw(st.sampled_from(["none", "none", "acw", "break", "off_queue", "request"]))
            if after in ("acw", "break", "off_queue"):
                events.append(agent_state(agent, after, t, event_id=next_id(agent)))
                t += draw(st.integers(10, 900))
                events.append(agent_state(agent, "available", t, event_id=next_id(agent)))
            elif after == "request":
                request_id = next_id(agent)
                request_at = t + draw(st.integers(0, 30))
                events.append(break_action(agent, "request", request_at, event_id=request_id))
                reply = draw(st.sampled_from(["none", "accept", "decline", "start"]))
                if reply != "none":
                    break_id = make_break_id(agent, request_id, parse_ts(events[-1]["ts"]))
                    reply_at = request_at + draw(st.integers(0, 400))
                    events.append(break_action(agent, reply, reply_at, break_id, event_id=next_id(agent)))
                    t = max(t, reply_at)
            t += draw(st.integers(0, 1500))
        if draw(st.booleans()):
            events.append(agent_state(agent, "offline", t, event_id=next_id(agent)))

    events.sort(key=lambda document: document["ts"])
    return events


def outcome(messages, until_s: float | None = None):
    """Everything observable after a run: transitions, dead letters and each agent's final state."""
    transitions, dead, engine = run_engine(messages, config=CONFIG, until_s=until_s)
    published = [
        (
            t.event_id,
            t.type,
            t.time,
            t.agent_id,
            t.team_id,
            t.level,
            t.load,
            t.recommended_break_s,
            t.offer_expires_at,
            repr(t.reasons),
            t.trigger,
            t.actor,
            t.note,
        )
        for t in transitions
    ]
    agents = {
        agent_id: (
            agent.state,
            agent.t,
            agent.load,
            tuple(agent.contributions()),
            agent.level,
            agent.calls,
            agent.amber_s,
            agent.red_s,
            agent.break_id,
        )
        for agent_id, agent in engine.agents.items()
    }
    letters = [(letter.reason, letter.error) for letter in dead]
    return published, letters, agents


def last_s(events: list[dict]) -> float:
    return max(parse_ts(event["ts"]) for event in events) - T0


# Duplicates and order ---------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(data=st.data())
def test_duplicates_change_nothing(data):
    events = data.draw(timelines())
    with_duplicates = list(events)
    # Each duplicate arrives a few messages after its original, well inside the dedupe window.
    for index in sorted(data.draw(st.sets(st.integers(0, len(events) - 1), max_size=len(events))), reverse=True):
        position = index + 1
        for _ in range(data.draw(st.integers(0, 3))):
            if position < len(events) and parse_ts(events[position]["ts"]) - parse_ts(events[index]["ts"]) < 600:
                position += 1
        with_duplicates.insert(position, dict(events[index]))

    until_s = last_s(events) + 3600
    assert outcome(with_duplicates, until_s) == outcome(events, until_s)


@PROPERTY_SETTINGS
@given(data=st.data())
def test_shuffle_within_lateness_changes_nothing(data):
    events = data.draw(timelines())
    # Each event is delayed by up to the lateness bound, so none arrives after an event more than
    # the bound newer than itself.
    delays = data.draw(st.lists(st.integers(0, int(LATENESS_S)), min_size=len(events), max_size=len(events)))
    arrival = [
        event
        for _, _, event in sorted(
            ((parse_ts(event["ts"]) + delay, index, event) for index, (event, delay) in enumerate(zip(events, delays))),
            key=lambda item: (item[0], item[1]),
        )
    ]

    until_s = last_s(events) + 3600
    assert outcome(arrival, until_s) == outcome(events, until_s)


# Strain and recovery ----------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(
    data=st.data(),
    kind=st.sampled_from(["abuse", "threat", "escalation_request", "transfer", "sentiment"]),
)
def test_more_strain_never_lowers_load_at_that_instant(data, kind):
    events = data.draw(timelines(max_agents=2, max_calls=4))
    at_s = data.draw(st.integers(0, int(last_s(events)) + 60))
    agent = data.draw(st.sampled_from(["agent0", "agent1"]))
    before = [event for event in events if parse_ts(event["ts"]) - T0 < at_s]
    # A call of its own, so once-per-call impulses already counted for an open call do not hide it.
    call = "extra-call"
    opening = call_started(agent, call, at_s, event_id="impulse-call")
    if kind == "transfer":
        impulse = transfer(agent, call, at_s, event_id="impulse")
    elif kind == "sentiment":
        impulse = sentiment(agent, call, at_s, data.draw(st.sampled_from([-1.0, -0.5, 0.0])), event_id="impulse")
    else:
        impulse = flag(agent, call, at_s, kind, event_id="impulse")

    _, _, without = run_engine(before + [opening], config=CONFIG)
    _, _, with_impulse = run_engine(before + [opening, impulse], config=CONFIG)

    after = with_impulse.agents[agent]
    assert after.t == T0 + at_s
    if agent not in without.agents:
        assert after.load >= 0.0
        return
    baseline = without.agents[agent]
    load_without = baseline.load_at(T0 + at_s)
    assert after.load >= load_without * (1.0 - 1e-12)
    for value, value_without in zip(after.contributions(), baseline.contributions_at(T0 + at_s)):
        assert value >= value_without * (1.0 - 1e-12) - 1e-12
    if kind in ("abuse", "threat"):
        points = CONFIG.params(after.team_id).abuse_points if kind == "abuse" else CONFIG.params(after.team_id).threat_points
        assert after.contributions()[HOSTILITY] >= baseline.contributions_at(T0 + at_s)[HOSTILITY] + points * (1 - 1e-12)


def loaded_agent(flags: list[str], state: str):
    """An agent who took one 5-minute call with ``flags`` and went to ``state`` when it ended."""
    messages = [call_started("a", "c1", 0)]
    messages += [flag("a", "c1", 10 + index, kind) for index, kind in enumerate(flags)]
    messages.append(call_ended("a", "c1", 300))
    if state == "on_call":
        messages.append(call_started("a", "c2", 300))
    else:
        messages.append(agent_state("a", state, 300))
    _, _, engine = run_engine(messages, config=CONFIG)
    agent = engine.agents["a"]
    assert agent.t == T0 + 300
    return agent


FLAG_LISTS = st.lists(st.sampled_from(["abuse", "threat", "escalation_request"]), min_size=1, max_size=3, unique=True)


@PROPERTY_SETTINGS
@given(flags=FLAG_LISTS, elapsed_s=st.floats(min_value=1.0, max_value=7200.0))
def test_load_decays_faster_on_break_than_available(flags, elapsed_s):
    agents = {state: loaded_agent(flags, state) for state in ("break", "off_queue", "available", "acw", "on_call")}
    start_load = agents["break"].load
    assert start_load > 0.0
    later = T0 + 300 + elapsed_s
    loads = {state: agent.load_at(later) for state, agent in agents.items()}

    # Times are seconds since 1970 in a float, so an elapsed time is only good to about 1e-7 s.
    assert math.isclose(loads["break"], start_load * 2.0 ** (-elapsed_s / 300.0), rel_tol=1e-9)
    assert loads["off_queue"] == loads["break"]
    assert loads["break"] < loads["available"] <= start_load
    assert loads["acw"] < start_load
    # On a call load hardly drains (a two-hour half-life), and time on calls adds to it.
    assert loads["on_call"] >= start_load * 2.0 ** (-elapsed_s / 7200.0) * (1.0 - 1e-9)
    if elapsed_s <= 60.0:
        # The first minute of a gap between calls recovers no more than time on a call.
        assert math.isclose(loads["available"], start_load * 2.0 ** (-elapsed_s / 7200.0), rel_tol=1e-9)
    else:
        expected = start_load * 2.0 ** (-60.0 / 7200.0) * 2.0 ** (-(elapsed_s - 60.0) / 900.0)
        assert math.isclose(loads["available"], expected, rel_tol=1e-9)


@PROPERTY_SETTINGS
@given(flags=FLAG_LISTS, first_s=st.floats(min_value=0.0, max_value=3600.0), more_s=st.floats(min_value=0.0, max_value=3600.0))
def test_load_without_strain_never_rises_off_calls(flags, first_s, more_s):
    for state in ("break", "available", "acw"):
        agent = loaded_agent(flags, state)
        earlier = agent.load_at(T0 + 300 + first_s)
        assert agent.load_at(T0 + 300 + first_s + more_s) <= earlier


@PROPERTY_SETTINGS
@given(flags=FLAG_LISTS, elapsed_s=st.floats(min_value=0.0, max_value=20_000.0))
def test_advancing_matches_projection(flags, elapsed_s):
    agent = loaded_agent(flags, "available")
    projected = agent.load_at(T0 + 300 + elapsed_s)
    agent.advance(T0 + 300 + elapsed_s)
    assert math.isclose(agent.load, projected, rel_tol=1e-12, abs_tol=1e-9)


# Reasons ------------------------------------------------------------------------------------------


def check_reasons(reasons: list[dict], contributions: list[float]) -> None:
    total = sum(contributions)
    assert sum(Decimal(repr(reason["share"])) for reason in reasons) == Decimal(1)
    assert len({reason["factor"] for reason in reasons}) == len(reasons)
    for position, reason in enumerate(reasons):
        index = FACTORS.index(reason["factor"])
        value = contributions[index]
        assert value > 0.0
        assert reason["detail"] == f"{FACTOR_DETAILS[index]}: {value:.1f} of {total:.1f} load points"
        if position > 0:
            assert reason["share"] == round(value / total, 3)
            assert value <= contributions[FACTORS.index(reasons[0]["factor"])]
        else:
            # The largest share takes the rounding remainder of the others.
            assert abs(reason["share"] - value / total) <= 0.0005 * len(reasons) + 1e-12
    assert {reason["factor"] for reason in reasons} == {
        FACTORS[index] for index, value in enumerate(contributions) if value > 0.0
    }


@PROPERTY_SETTINGS
@given(events=timelines())
def test_reasons_are_exact_factor_split(events):
    transitions, _, engine = run_engine(events, config=CONFIG, until_s=last_s(events) + 3600)
    for transition in transitions:
        if transition.reasons:
            assert sum(Decimal(repr(reason["share"])) for reason in transition.reasons) == Decimal(1)
    for agent in engine.agents.values():
        reasons = reasons_for(agent)
        if agent.load > 0.0:
            check_reasons(reasons, agent.contributions())
        else:
            assert reasons == []
        assert math.isclose(sum(agent.contributions()), agent.load, rel_tol=1e-12, abs_tol=1e-12)


def test_reasons_of_known_split():
    engine = Engine(CONFIG)
    _, _, engine = run_engine(
        [call_started("a", "c1", 0), flag("a", "c1", 0, "threat"), flag("a", "c1", 0, "abuse"), transfer("a", "c1", 0)],
        engine=engine,
    )
    agent = engine.agents["a"]
    assert agent.contributions()[HOSTILITY] == 40.0
    assert reasons_for(agent) == [
        {"factor": "hostility", "share": 0.889, "detail": "abuse or threats from customers: 40.0 of 45.0 load points"},
        {"factor": "escalation", "share": 0.111, "detail": "transfers and escalations: 5.0 of 45.0 load points"},
    ]


def test_event_exactly_lateness_behind_applies_in_order():
    # The end of c1 and the start of c2 share a second; the end arrives a full lateness bound
    # late, after an event 30 s newer has moved event time on.
    in_order = [
        call_started("a", "c1", 0, event_id="1"),
        call_ended("a", "c1", 100, event_id="2"),
        call_started("a", "c2", 100, event_id="3"),
        agent_state("b", "available", 130, event_id="4"),
    ]
    arrival = [in_order[0], in_order[2], in_order[3], in_order[1]]

    published, letters, agents = outcome(arrival, until_s=2000)

    assert letters == []
    assert (published, letters, agents) == outcome(in_order, until_s=2000)
