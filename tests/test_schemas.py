"""The versioned JSON Schemas against real inputs and real outputs of agentload."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jsonschema
import pytest

from features.command import extract_messages
from streams import anonymous_bank
from streams.adapters.amazon_connect import AmazonConnectAdapter
from streams.codec import break_cloudevent, dead_letter_record
from streams.config import load_config
from streams.engine import Engine, Origin
from streams.events import decode, validate_any
from streams.simulator import FloorSimulator, SimulatorSettings

SCHEMAS = Path(__file__).resolve().parent.parent / "streams" / "schemas"
START = 1_772_438_400.0


def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{name}.v1.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def assert_valid(name: str, documents: list[dict]) -> None:
    check = validator(name)
    assert documents, f"no {name} documents to check"
    for document in documents:
        errors = sorted(check.iter_errors(document), key=str)
        assert not errors, f"{name}: {errors[0].message} in {document}"


def simulated_floor(minutes: float) -> list[dict]:
    simulator = FloorSimulator(SimulatorSettings(agents=24, seed=3), START)
    documents = simulator.events_until(START + minutes * 60.0)
    for document in documents:
        document.pop("_t")
    return documents


def run_engine(documents: list[dict]) -> Engine:
    engine = Engine(load_config())
    for document in documents:
        engine.submit(validate_any(document))
    engine.flush()
    return engine


def test_simulated_call_events_match_their_schema():
    documents = simulated_floor(90)
    assert_valid("call-events", [document for document in documents if "action" not in document])


def test_break_actions_match_their_schema():
    assert_valid(
        "break-actions",
        [
            {"event_id": "r1", "agent_id": "a", "ts": "2026-03-02T09:00:00Z", "action": "request", "actor": "agent"},
            {"event_id": "a1", "break_id": "brk-1", "agent_id": "a", "ts": "2026-03-02T09:00:05+01:00",
             "action": "accept", "actor": "supervisor", "note": "go now"},
        ],
    )
    with pytest.raises(AssertionError, match="break_id"):
        assert_valid("break-actions", [{"event_id": "a2", "agent_id": "a", "ts": "2026-03-02T09:00:00Z", "action": "accept", "actor": "agent"}])


def test_anonymous_bank_events_match_call_events_schema(shared_data):
    path = shared_data / "anonymous-bank-calls" / "anonymous_bank_1999-08-01_to_08-14.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        events, _ = anonymous_bank.read_calls(handle)
    assert_valid("call-events", events[:2000])


def test_amazon_connect_events_match_call_events_schema(shared_data):
    adapter = AmazonConnectAdapter()
    converted = []
    for path in sorted((shared_data / "amazon-connect-events").glob("*.json")):
        events, _ = adapter.convert(json.loads(path.read_text()))
        converted.extend(events)
    events, _ = adapter.flush()
    converted.extend(events)
    assert_valid("call-events", converted)


def test_audio_features_match_their_schema(shared_data):
    messages = list(
        extract_messages(
            [shared_data / "crema-d-speech" / "1001_DFA_ANG_XX.wav"],
            agent_id="a1",
            call_id="c1",
            start_ts="2026-03-02T10:00:00Z",
        )
    )
    assert_valid("audio-features", messages)


def test_break_events_and_snapshots_match_their_schemas():
    engine = run_engine(simulated_floor(180))
    transitions = engine.drain_transitions()
    cloudevents = [break_cloudevent(transition, "/agentload") for transition in transitions]
    assert {event["type"] for event in cloudevents} >= {"io.agentload.break.suggested"}
    assert_valid("recovery-breaks", cloudevents)
    assert_valid("agent-load", engine.snapshots(engine.max_ts, 60.0))


@pytest.mark.parametrize(
    "value",
    [b'{"event_id": "x"', b"\xff\xfe not utf-8", '{"event_id":"e1","type":"call_ended","agent_id":"a","ts":"2026-03-02T09:00:00Z","call_id":"c9"}'],
)
def test_dead_letters_match_their_schema(value):
    engine = Engine(load_config())
    origin = Origin("call-events", 2, 41, b"a", value)
    events, invalid = decode("call-events", value)
    for bad in invalid:
        engine.reject(bad.error, "invalid_event", origin)
    for event in events:
        engine.submit(event, origin)
    engine.flush()
    records = [dead_letter_record(dead, time.time()) for dead in engine.drain_dead_letters()]
    assert len(records) == 1
    assert_valid("dead-letters", records)
