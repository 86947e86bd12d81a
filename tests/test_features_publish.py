"""``agentload features --to``: audio features published to Kafka, packed, in the agent's partition."""

from __future__ import annotations

import json

import pytest

from streams.kafka_cli import team_partition
from tests.faust_support import agentload, read_json
from tests.kafka_support import read_topic

pytestmark = pytest.mark.kafka

ANGRY = "crema-d-speech/1001_DFA_ANG_XX.wav"


def test_features_published_to_team_partition(kafka_bootstrap, kafka_topic_prefix, shared_data):
    prefix = kafka_topic_prefix
    agentload("topics", "--broker", kafka_bootstrap, "--topic-prefix", prefix, "--partitions", "3")
    written = agentload(
        "features", str(shared_data / ANGRY), "--agent-id", "a1", "--call-id", "c1", "--team-id", "billing",
        "--start-ts", "2026-03-02T10:00:00Z",
    )
    expected = [json.loads(line) for line in written.stdout.splitlines()]

    published = agentload(
        "features", str(shared_data / ANGRY), "--agent-id", "a1", "--call-id", "c1", "--team-id", "billing",
        "--start-ts", "2026-03-02T10:00:00Z", "--to", kafka_bootstrap, "--topic-prefix", prefix,
    )

    records = read_topic(kafka_bootstrap, f"{prefix}.audio-features")
    assert published.stdout == ""
    assert f"published {len(expected)} windows in 1 messages" in published.stderr
    assert len(records) == 1
    assert records[0].partition == team_partition("billing", 3)
    assert json.loads(records[0].value) == expected
    assert read_json(kafka_bootstrap, f"{prefix}.call-events") == []
