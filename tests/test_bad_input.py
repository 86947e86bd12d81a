"""Bad input: every unusable message becomes a dead letter whose error states what to fix, and the
messages after it are still processed."""

from __future__ import annotations

import json

import pytest

from features.call_factors import HANDLE_TIME, HOLD
from streams import cli
from streams.state import GREEN
from tests.helpers import (
    agent_state,
    break_action,
    call_ended,
    call_started,
    encode,
    hold_ended,
    hold_started,
    run_engine,
    ts,
)

# A call that always follows the bad input, to show that processing went on.
FOLLOW_UP = [call_started("z", "cz", 1000), call_ended("z", "cz", 1300)]


def run_with_follow_up(messages):
    transitions, dead, engine = run_engine(list(messages) + FOLLOW_UP)
    assert engine.agents["z"].calls == 1
    assert engine.agents["z"].state == "available"
    assert engine.counts[("call_ended", "processed")] >= 1
    return dead, engine


def only_dead_letter(dead):
    assert len(dead) == 1
    return dead[0]


def test_malformed_json_is_dead_letter():
    text = '{"event_id": "e1", "type": "call_started", '
    dead, _ = run_with_follow_up([text])
    letter = only_dead_letter(dead)
    assert letter.reason == "invalid_json"
    assert letter.error.startswith("message is not valid JSON (")
    assert letter.error.endswith("send one JSON object, or a JSON array of objects")
    assert letter.origin.value == text


def test_non_utf8_bytes_are_dead_letter():
    dead, _ = run_with_follow_up([b"\xff\xfe{}"])
    letter = only_dead_letter(dead)
    assert letter.reason == "invalid_json"
    assert letter.error.startswith("message is not UTF-8 text (")
    assert letter.error.endswith("send UTF-8 encoded JSON")
    assert letter.origin.value == b"\xff\xfe{}"


@pytest.mark.parametrize("value", ["[1, 2]", '"text"', "null", "42"])
def test_json_that_is_not_an_object_is_dead_letter(value):
    dead, _ = run_with_follow_up([value])
    assert all(letter.reason == "invalid_event" for letter in dead)
    assert all("a call event must be a JSON object, not" in letter.error for letter in dead)


@pytest.mark.parametrize(
    ("missing", "expected"),
    [
        ("event_id", "event is missing 'event_id'; every event needs event_id, agent_id and ts"),
        ("agent_id", "event 'm1' is missing 'agent_id'; every event needs event_id, agent_id and ts"),
        ("ts", "event 'm1' is missing 'ts'; every event needs event_id, agent_id and ts"),
        ("call_id", "event 'm1' is missing 'call_id'; a call_started event names its call"),
        (
            "type",
            "event 'm1' is missing 'type'; use one of agent_state, call_started, call_ended, hold_started, "
            "hold_ended, transfer, sentiment, interaction_flag",
        ),
    ],
)
def test_missing_field_is_dead_letter(missing, expected):
    document = call_started("a", "c1", 0, event_id="m1")
    del document[missing]
    dead, engine = run_with_follow_up([document])
    letter = only_dead_letter(dead)
    assert letter.reason == "invalid_event"
    assert letter.error == expected
    assert "a" not in engine.agents


def test_missing_agent_state_is_dead_letter():
    document = agent_state("a", "available", 0, event_id="m1")
    del document["state"]
    dead, _ = run_with_follow_up([document])
    assert only_dead_letter(dead).error == (
        "event 'm1' of type 'agent_state' is missing 'state'; "
        "use one of available, on_call, acw, break, off_queue, offline"
    )


def test_timestamp_without_offset_is_dead_letter():
    document = call_started("a", "c1", 0, event_id="m1")
    document["ts"] = "2026-03-02 09:15:04"
    dead, _ = run_with_follow_up([document])
    letter = only_dead_letter(dead)
    assert letter.reason == "invalid_event"
    assert letter.error == (
        "ts '2026-03-02 09:15:04' has no UTC offset; send RFC 3339 with Z or +hh:mm, e.g. 2026-03-02T09:15:04Z"
    )


@pytest.mark.parametrize("value", ["yesterday", "20260302T0915Z", "2026-03-02T09:15Z", ""])
def test_timestamp_not_rfc3339_is_dead_letter(value):
    document = call_started("a", "c1", 0, event_id="m1")
    document["ts"] = value
    dead, _ = run_with_follow_up([document])
    assert only_dead_letter(dead).error == (
        f"ts {value!r} is not an RFC 3339 timestamp; send e.g. 2026-03-02T09:15:04.120Z"
    )


def test_impossible_date_is_dead_letter():
    document = call_started("a", "c1", 0, event_id="m1")
    document["ts"] = "2026-13-02T09:15:00Z"
    dead, _ = run_with_follow_up([document])
    assert only_dead_letter(dead).error == (
        "ts '2026-13-02T09:15:00Z' is not a valid date and time; send e.g. 2026-03-02T09:15:04.120Z"
    )


def test_numeric_timestamp_is_dead_letter():
    document = call_started("a", "c1", 0, event_id="m1")
    document["ts"] = 1772442000
    dead, _ = run_with_follow_up([document])
    assert only_dead_letter(dead).error == (
        "ts must be an RFC 3339 string such as 2026-03-02T09:15:00Z, not 1772442000"
    )


def test_unknown_type_is_dead_letter():
    document = call_started("a", "c1", 0, event_id="m1")
    document["type"] = "call_parked"
    dead, _ = run_with_follow_up([document])
    letter = only_dead_letter(dead)
    assert letter.reason == "invalid_event"
    assert letter.error.startswith("event 'm1': type 'call_parked' is not a call-event type; use one of agent_state,")


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("score", 1.5, "event 'm1': score 1.5 is out of range; send a number from -1 to 1"),
        ("score", "bad", "event 'm1': score must be a finite number, not 'bad'"),
        ("speaker", "robot", "event 'm1': speaker 'robot' is not valid; use one of customer, agent"),
        ("window_s", -5, "event 'm1': window_s -5 is out of range; send a number from 0 to 3600"),
    ],
)
def test_sentiment_bad_value_is_dead_letter(field, value, expected):
    document = {
        "event_id": "m1",
        "type": "sentiment",
        "agent_id": "a",
        "ts": ts(0),
        "call_id": "c1",
        "speaker": "customer",
        "score": -0.2,
    }
    document[field] = value
    dead, _ = run_with_follow_up([document])
    assert only_dead_letter(dead).error == expected


def test_nan_score_is_dead_letter():
    text = encode({"event_id": "m1", "type": "sentiment", "agent_id": "a", "ts": ts(0), "call_id": "c1", "speaker": "customer"})
    text = text[:-1] + ',"score":NaN}'
    dead, _ = run_with_follow_up([text])
    assert only_dead_letter(dead).error == "event 'm1': score must be a finite number, not nan"


def test_unknown_fields_are_kept_and_ignored():
    document = call_started("a", "c1", 0)
    document["queue_colour"] = "blue"
    _, dead, engine = run_engine([document])
    assert dead == []
    assert engine.agents["a"].call.call_id == "c1"


def test_call_ended_for_unknown_call_is_dead_letter():
    dead, engine = run_with_follow_up([agent_state("a", "available", 0), call_ended("a", "c9", 10)])
    letter = only_dead_letter(dead)
    assert letter.reason == "unknown_call"
    assert letter.error == (
        "call_ended for call 'c9' of agent 'a', but that call is not open (no call_started seen for it within "
        "the 30 s lateness bound); send call_started first, or check the call_id"
    )
    assert engine.agents["a"].calls == 0


def test_call_ended_for_other_call_keeps_open_call():
    dead, engine = run_with_follow_up([call_started("a", "c1", 0), call_ended("a", "c9", 10)])
    assert only_dead_letter(dead).reason == "unknown_call"
    assert engine.agents["a"].call.call_id == "c1"
    assert engine.agents["a"].state == "on_call"


def test_hold_for_unknown_call_is_dead_letter():
    dead, _ = run_with_follow_up([agent_state("a", "available", 0), hold_started("a", "c9", 10)])
    letter = only_dead_letter(dead)
    assert letter.reason == "unknown_call"
    assert letter.error == (
        "hold_started for call 'c9' of agent 'a', but that call is not open; send call_started first, "
        "or check the call_id"
    )


def test_negative_call_duration_is_dead_letter():
    # The end arrives after the lateness bound has passed its start, 50 s before the start.
    dead, engine = run_with_follow_up(
        [call_started("a", "c1", 100), agent_state("b", "available", 200), call_ended("a", "c1", 50)]
    )
    letter = only_dead_letter(dead)
    assert letter.reason == "absurd_value"
    assert letter.error.startswith("call 'c1' of agent 'a' would last -50 s (from ")
    assert letter.error.endswith(
        "outside 0 to 43200 s; the call was closed without counting its handle time or hold; "
        "check the ts of its call_started and call_ended"
    )
    agent = engine.agents["a"]
    assert agent.call is None
    assert agent.contributions()[HANDLE_TIME] == 0.0


def test_absurd_call_duration_is_dead_letter():
    dead, engine = run_with_follow_up([call_started("a", "c1", -50_000), call_ended("a", "c1", -3_000)])
    letter = only_dead_letter(dead)
    assert letter.reason == "absurd_value"
    assert letter.error.startswith("call 'c1' of agent 'a' would last longer than 43200 s, so it was closed at that limit")
    assert engine.agents["a"].contributions()[HANDLE_TIME] == 0.0
    assert engine.calls_closed_at_limit == 1


def test_absurd_call_duration_counts_no_hold():
    messages = [call_started("a", "c1", -50_000), hold_started("a", "c1", -49_000), call_ended("a", "c1", -3_000)]
    dead, engine = run_with_follow_up(messages)
    assert only_dead_letter(dead).reason == "absurd_value"
    assert engine.agents["a"].contributions()[HOLD] == 0.0
    assert engine.agents["a"].level == GREEN


def test_hold_ended_without_hold_started_changes_nothing():
    _, dead, engine = run_engine([call_started("a", "c1", 0), hold_ended("a", "c1", 30)])
    assert dead == []
    assert engine.agents["a"].contributions()[HOLD] == 0.0


def test_break_action_for_unknown_break_is_dead_letter():
    dead, _ = run_with_follow_up([agent_state("a", "available", 0), break_action("a", "accept", 10, "brk-missing")])
    letter = only_dead_letter(dead)
    assert letter.reason == "unknown_break"
    assert letter.error == (
        "accept for break 'brk-missing' of agent 'a', but no such break is known (ended breaks are remembered "
        "for 86400 s); check the break_id against the recovery-breaks events, or send 'request' without a "
        "break_id to ask for a new break"
    )


def test_break_action_without_break_id_is_dead_letter():
    document = break_action("a", "accept", 10, event_id="m1")
    dead, _ = run_with_follow_up([document])
    letter = only_dead_letter(dead)
    assert letter.reason == "invalid_event"
    assert letter.error == (
        "event 'm1': action 'accept' needs the break_id of the break it acts on; only 'request' may leave it out"
    )


def test_break_action_unknown_actor_is_dead_letter():
    document = break_action("a", "request", 10, event_id="m1")
    document["actor"] = "robot"
    dead, _ = run_with_follow_up([document])
    assert only_dead_letter(dead).error == "event 'm1': actor 'robot' is not valid; use one of agent, supervisor, wfm, acd"


def test_packed_message_with_one_bad_element():
    good_start = call_started("a", "c1", 0)
    bad = {"event_id": "m2", "type": "call_started", "agent_id": "a", "ts": ts(10)}
    good_end = call_ended("a", "c1", 300)
    dead, engine = run_with_follow_up([[good_start, bad, good_end]])
    letter = only_dead_letter(dead)
    assert letter.reason == "invalid_event"
    assert letter.error == "element 1 of the packed message: event 'm2' is missing 'call_id'; a call_started event names its call"
    assert json.loads(letter.origin.value) == bad
    assert engine.agents["a"].calls == 1
    assert engine.agents["a"].call is None


def test_replay_writes_dead_letters_and_goes_on(tmp_path, capsys):
    lines = [
        encode(call_started("a", "c1", 0)),
        "not json",
        encode({"event_id": "m3", "type": "call_ended", "agent_id": "a", "ts": "2026-03-02T08:05:00", "call_id": "c1"}),
        encode(call_ended("a", "c1", 300)),
        encode(call_ended("a", "c7", 400)),
    ]
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines) + "\n", encoding="utf-8")
    dead_path = tmp_path / "dead.jsonl"

    code = cli.main(["replay", str(events), "--dead-letters", str(dead_path)])

    assert code == 0
    captured = capsys.readouterr()
    records = [json.loads(line) for line in dead_path.read_text(encoding="utf-8").splitlines()]
    assert [(record["reason"], record["offset"]) for record in records] == [
        ("invalid_json", 2),
        ("invalid_event", 3),
        ("unknown_call", 5),
    ]
    assert records[0]["value"] == "not json"
    assert records[1]["error"].startswith("ts '2026-03-02T08:05:00' has no UTC offset")
    assert all(record["source_topic"] == str(events) for record in records)
    summary = [line.split() for line in captured.out.splitlines() if line.startswith("a ")]
    assert summary == [["a", "default", "1", "1.1", "0.0", "0.0", "0"]]
    assert captured.err.endswith(f"3 messages could not be used; see the dead letters in {dead_path}\n")


def test_lost_call_end_over_twelve_hours_counts_no_hold():
    # The platform lost the end of c1 and of its hold; c2 starts two days later.
    _, dead, engine = run_engine(
        [call_started("a", "c1", 0), hold_started("a", "c1", 10), call_started("a", "c2", 2 * 86_400)]
    )
    agent = engine.agents["a"]
    assert dead == []
    assert agent.call.call_id == "c2"
    assert agent.contributions()[HOLD] == 0.0
    assert agent.contributions()[HANDLE_TIME] == 0.0
    assert agent.ht_calls == 0
    assert agent.level == GREEN
