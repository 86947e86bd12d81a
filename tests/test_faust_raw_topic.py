"""The Faust worker reading a raw Amazon Connect topic through the same adapter as ingest."""

from __future__ import annotations

import json
import time

import pytest
from kafka import KafkaProducer

from tests.faust_support import WorkerProcess, agentload, read_json
from tests.kafka_support import create_topics

pytestmark = pytest.mark.kafka

# The real agent-event samples; the Contact Lens samples name placeholder contacts that no agent
# event links to, so they would only add dead letters.
SAMPLES = (
    "agent_event_STATE_CHANGE_contact_ENDED_enters_ACW.clean.json",
    "agent_event_HEART_BEAT.clean.json",
)


def test_raw_platform_topic_converts_like_ingest(kafka_bootstrap, kafka_topic_prefix, shared_data, tmp_path):
    prefix = kafka_topic_prefix
    folder = shared_data / "amazon-connect-events"
    documents = [json.loads((folder / name).read_text()) for name in SAMPLES]
    raw_file = tmp_path / "raw.json"
    raw_file.write_text(json.dumps(documents))
    expected = [json.loads(line) for line in agentload("ingest", "--from", "amazon-connect", str(raw_file)).stdout.splitlines()]
    assert expected

    raw_topic = f"{prefix}.connect-agent-events"
    agentload("topics", "--broker", kafka_bootstrap, "--topic-prefix", prefix, "--partitions", "2")
    create_topics(kafka_bootstrap, {raw_topic: 1})
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for document in documents:
        producer.send(raw_topic, json.dumps(document).encode())
    producer.send(raw_topic, b"{not json")
    producer.flush()
    producer.close()

    worker = WorkerProcess(kafka_bootstrap, prefix, tmp_path, "worker", "--raw-topic", f"amazon-connect={raw_topic}")
    try:
        worker.wait_ready()
        deadline = time.monotonic() + 60
        converted: list[dict] = []
        while time.monotonic() < deadline and len(converted) < len(expected):
            converted = [event for message in read_json(kafka_bootstrap, f"{prefix}.call-events") for event in message]
            time.sleep(0.5)
        dead = read_json(kafka_bootstrap, f"{prefix}.dead-letters")
    finally:
        assert worker.stop() == 0

    assert sorted(converted, key=lambda event: event["event_id"]) == sorted(expected, key=lambda event: event["event_id"])
    raw_dead = [record for record in dead if record["source_topic"] == raw_topic]
    assert len(raw_dead) == 1
    assert raw_dead[0]["offset"] == len(documents)
    assert "is not JSON" in raw_dead[0]["error"]
