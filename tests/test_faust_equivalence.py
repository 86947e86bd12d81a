"""The Faust worker against the replay of the same input: same transitions, dead letters for bad input."""

from __future__ import annotations

import json

import pytest
from kafka import KafkaProducer

from streams.simulator import FloorSimulator, SimulatorSettings
from streams.events import parse_ts
from tests.faust_support import AB_FILE, WorkerProcess, agentload, by_id, read_json, replay_json, wait_for_breaks
from tests.kafka_support import read_topic

pytestmark = pytest.mark.kafka


def test_anonymous_bank_same_as_replay(kafka_bootstrap, kafka_topic_prefix, shared_data, tmp_path):
    data = shared_data / AB_FILE
    expected = by_id(replay_json(data))
    prefix = kafka_topic_prefix
    agentload("topics", "--broker", kafka_bootstrap, "--topic-prefix", prefix, "--partitions", "2")
    agentload("produce", "--broker", kafka_bootstrap, "--topic-prefix", prefix, str(data))

    worker = WorkerProcess(kafka_bootstrap, prefix, tmp_path, "worker")
    try:
        worker.wait_ready()
        events = wait_for_breaks(kafka_bootstrap, f"{prefix}.recovery-breaks", set(expected))
        status, metrics = worker.get("/metrics")
        health = worker.get("/healthz")
    finally:
        assert worker.stop() == 0

    assert len(expected) == 240
    assert by_id(events) == expected
    assert len(events) == len(expected)
    assert status == 200
    assert 'agentload_events_total{outcome="processed",topic="call-events",type="call_started"} 14357.0' in metrics
    assert f'agentload_consumer_lag_messages{{partition="0",topic="{prefix}.call-events"}} 0.0' in metrics
    assert health == (200, "ok\n")


def simulated_lines(agents: int = 12, hours: float = 1.0) -> list[str]:
    start = parse_ts("2026-03-02T08:00:00Z")
    simulator = FloorSimulator(SimulatorSettings(agents=agents, team_size=6, seed=3), start)
    lines = []
    for event in simulator.events_until(start + hours * 3600.0):
        event.pop("_t")
        lines.append(json.dumps(event, separators=(",", ":")))
    return lines


BAD_LINES = [
    "{not json",
    '{"event_id":"bad-1","type":"call_started","agent_id":"agent-001","team_id":"billing","ts":"2026-03-02 08:10:00","call_id":"x"}',
    '{"event_id":"bad-2","type":"coffee_break","agent_id":"agent-001","team_id":"billing","ts":"2026-03-02T08:11:00Z"}',
    '{"event_id":"bad-3","type":"sentiment","agent_id":"agent-002","team_id":"billing","ts":"2026-03-02T08:12:00Z","call_id":"c","speaker":"customer","score":7}',
]


def test_poison_messages_go_to_dead_letters(kafka_bootstrap, kafka_topic_prefix, tmp_path):
    good = simulated_lines()
    mixed = list(good)
    for index, bad in enumerate(BAD_LINES):
        mixed.insert(200 + 300 * index, bad)
    good_path = tmp_path / "good.jsonl"
    mixed_path = tmp_path / "mixed.jsonl"
    good_path.write_text("\n".join(good) + "\n")
    # A line that is not UTF-8 goes through produce as it is and becomes a dead letter.
    mixed_path.write_bytes("\n".join(mixed[:500]).encode() + b"\n\xff\xfe not utf-8\n" + "\n".join(mixed[500:]).encode() + b"\n")
    expected = by_id(replay_json(good_path))

    prefix = kafka_topic_prefix
    agentload("topics", "--broker", kafka_bootstrap, "--topic-prefix", prefix, "--partitions", "2")
    agentload("produce", "--broker", kafka_bootstrap, "--topic-prefix", prefix, "--no-pack", str(mixed_path))
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    producer.send(f"{prefix}.break-actions", key=b"agent-003", value=b'{"event_id":"bad-4","agent_id":"agent-003","ts":"2026-03-02T08:30:00Z","action":"accept","actor":"agent"}', partition=1)
    producer.flush()
    producer.close()

    worker = WorkerProcess(kafka_bootstrap, prefix, tmp_path, "worker")
    try:
        worker.wait_ready()
        events = wait_for_breaks(kafka_bootstrap, f"{prefix}.recovery-breaks", set(expected))
        dead = read_json(kafka_bootstrap, f"{prefix}.dead-letters")
    finally:
        assert worker.stop() == 0

    assert len(expected) > 0
    assert by_id(events) == expected
    inputs = {
        (record.topic, record.partition, record.offset): record.value
        for topic in ("call-events", "break-actions")
        for record in read_topic(kafka_bootstrap, f"{prefix}.{topic}")
    }
    assert len(dead) == len(BAD_LINES) + 2
    for letter in dead:
        original = inputs[(letter["source_topic"], letter["partition"], letter["offset"])]
        if letter["value_encoding"] == "utf-8":
            assert letter["value"].encode() == original
        else:
            assert original == b"\xff\xfe not utf-8"
        assert letter["error"]
    errors = sorted(letter["error"] for letter in dead)
    assert any("not valid JSON" in error for error in errors)
    assert any("has no UTC offset" in error for error in errors)
    assert any("'coffee_break' is not a call-event type" in error for error in errors)
    assert any("score 7 is out of range" in error for error in errors)
    assert any("not UTF-8" in error for error in errors)
    assert any("needs the break_id" in error for error in errors)
