"""Round trip through the real Kafka broker that `make test` starts."""

from __future__ import annotations

from collections import defaultdict

import pytest
from kafka import KafkaProducer

from tests.kafka_support import create_topics, read_topic

pytestmark = pytest.mark.kafka

KEYS = [f"agent-{n}" for n in range(1, 7)]
MESSAGES_PER_KEY = 40

# Partition of each key in a 3-partition topic, from the Java client's default partitioner
# (murmur2 of the key bytes, kafka-clients 4.2.2). Faust and Kafka Streams route keys the same
# way, so a Python producer must agree with these values.
JAVA_PARTITION_BY_KEY = {
    "agent-1": 1,
    "agent-2": 0,
    "agent-3": 1,
    "agent-4": 2,
    "agent-5": 1,
    "agent-6": 1,
}


def test_keyed_messages_round_trip(kafka_bootstrap: str, kafka_topic_prefix: str) -> None:
    topic = f"{kafka_topic_prefix}.round-trip"
    create_topics(kafka_bootstrap, {topic: 3})

    producer = KafkaProducer(
        bootstrap_servers=kafka_bootstrap,
        acks="all",
        # One request in flight per broker connection keeps a retried batch from overtaking the next one.
        max_in_flight_requests_per_connection=1,
        linger_ms=5,
    )
    try:
        for sequence in range(MESSAGES_PER_KEY):
            for key in KEYS:
                producer.send(topic, key=key.encode(), value=f"{key}:{sequence}".encode())
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)

    records = read_topic(kafka_bootstrap, topic)

    sequences_by_key: dict[str, list[int]] = defaultdict(list)
    partitions_by_key: dict[str, set[int]] = defaultdict(set)
    for record in records:
        key = record.key.decode()
        value_key, sequence = record.value.decode().split(":")
        assert value_key == key
        sequences_by_key[key].append(int(sequence))
        partitions_by_key[key].add(record.partition)

    assert len(records) == len(KEYS) * MESSAGES_PER_KEY
    assert sorted(sequences_by_key) == KEYS
    for key in KEYS:
        assert sequences_by_key[key] == list(range(MESSAGES_PER_KEY)), key
        assert partitions_by_key[key] == {JAVA_PARTITION_BY_KEY[key]}, key


def test_read_topic_empty_topic(kafka_bootstrap: str, kafka_topic_prefix: str) -> None:
    topic = f"{kafka_topic_prefix}.empty"
    create_topics(kafka_bootstrap, {topic: 2})

    assert read_topic(kafka_bootstrap, topic, idle_s=0.5) == []
