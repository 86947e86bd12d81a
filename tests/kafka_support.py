"""Support for tests against a real Kafka broker: its address, topic names, topic set-up and reads.

`make test` starts the local broker (deploy/kafka/broker) and exports KAFKA_BOOTSTRAP_SERVERS; a
developer can also point that variable at any broker they run. Mark such tests `@pytest.mark.kafka`
and take the `kafka_bootstrap` fixture.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Mapping

import kafka.errors
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.consumer.fetcher import ConsumerRecord

BOOTSTRAP_SERVERS_VARIABLE = "KAFKA_BOOTSTRAP_SERVERS"

# Kafka accepts topic names of up to 249 characters from [a-zA-Z0-9._-].
MAX_TOPIC_NAME_LENGTH = 249

# One id per pytest process, so topics from earlier runs against a long-lived broker never mix in.
RUN_ID = uuid.uuid4().hex[:10]


def is_ci(environ: Mapping[str, str]) -> bool:
    """Return whether the CI variable, which CI services set to e.g. "true", marks a CI run."""
    return environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_bootstrap_servers(environ: Mapping[str, str] = os.environ) -> str:
    """Return KAFKA_BOOTSTRAP_SERVERS, or skip the test where it is unset.

    Under CI a missing broker fails the test instead, because CI must never pass by skipping
    every Kafka test.
    """
    bootstrap_servers = environ.get(BOOTSTRAP_SERVERS_VARIABLE, "").strip()
    if bootstrap_servers:
        return bootstrap_servers

    if is_ci(environ):
        pytest.fail(
            f"{BOOTSTRAP_SERVERS_VARIABLE} is not set, and CI must run the Kafka tests; "
            "run them through `make test`, which starts a local broker, "
            f"or set {BOOTSTRAP_SERVERS_VARIABLE}=host:port",
            pytrace=False,
        )
    pytest.skip(
        f"{BOOTSTRAP_SERVERS_VARIABLE} is not set; run `make test`, or `make kafka-up` and "
        f"export {BOOTSTRAP_SERVERS_VARIABLE}=127.0.0.1:9092"
    )


def topic_prefix(test_name: str, *, run_id: str = RUN_ID) -> str:
    """Return a topic name prefix unique to this test run and test, e.g. `agentload-test.3f2a….round-trip`.

    Characters that Kafka rejects in topic names become '-'. '_' becomes '-' as well, because Kafka
    warns about topics whose names differ only in '.' versus '_'.
    """
    safe_name = re.sub(r"[^a-zA-Z0-9-]+", "-", test_name).strip("-") or "test"
    prefix = f"agentload-test.{run_id}.{safe_name}"

    # Leave room for the suffix that the test appends, such as ".call-events".
    return prefix[: MAX_TOPIC_NAME_LENGTH - 60]


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """Bootstrap address of the Kafka broker, from KAFKA_BOOTSTRAP_SERVERS."""
    return require_bootstrap_servers()


@pytest.fixture
def kafka_topic_prefix(request: pytest.FixtureRequest) -> str:
    """Topic name prefix unique to this test run and test; append e.g. ".call-events"."""
    return topic_prefix(request.node.name)


def create_topics(
    bootstrap_servers: str,
    partitions_by_topic: Mapping[str, int],
    *,
    configs: Mapping[str, str] | None = None,
    timeout_s: float = 30.0,
) -> None:
    """Create topics with one replica each and wait until every partition has a leader.

    Parameters
    ----------
    bootstrap_servers : str
        Broker address, e.g. "127.0.0.1:9092".
    partitions_by_topic : Mapping[str, int]
        Number of partitions of each new topic, by topic name.
    configs : Mapping[str, str], optional
        Topic configuration for every topic, e.g. {"cleanup.policy": "compact"}.
    timeout_s : float
        Seconds to wait for the broker to create the topics and elect their leaders.

    Raises
    ------
    ValueError
        If a partition count is below 1.
    kafka.errors.KafkaError
        If the broker rejects a topic, e.g. TopicAlreadyExistsError.
    TimeoutError
        If some partition still has no leader after `timeout_s`.
    """
    for topic, partitions in partitions_by_topic.items():
        if partitions < 1:
            raise ValueError(f"topic {topic!r} needs at least 1 partition, got {partitions}")

    new_topics = [
        NewTopic(
            name=topic,
            num_partitions=partitions,
            replication_factor=1,
            topic_configs=dict(configs or {}),
        )
        for topic, partitions in partitions_by_topic.items()
    ]
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id="agentload-tests-admin",
        request_timeout_ms=int(timeout_s * 1000),
    )
    try:
        response = admin.create_topics(new_topics, timeout_ms=int(timeout_s * 1000))
        for topic, error_code, error_message in response.topic_errors:
            if error_code != 0:
                error_class = kafka.errors.for_code(error_code)
                raise error_class(f"creating topic {topic!r} failed: {error_message or error_class.__name__}")
        _wait_for_leaders(admin, partitions_by_topic, timeout_s=timeout_s)
    finally:
        admin.close()


def _wait_for_leaders(
    admin: KafkaAdminClient, partitions_by_topic: Mapping[str, int], *, timeout_s: float
) -> None:
    # CreateTopics returns once the controller has accepted the topics; until the broker has
    # elected the leaders, producers and consumers get UNKNOWN_TOPIC_OR_PARTITION.
    deadline = time.monotonic() + timeout_s
    while True:
        missing = {}
        for description in admin.describe_topics(list(partitions_by_topic)):
            with_leader = [p for p in description["partitions"] if p["leader"] >= 0]
            expected = partitions_by_topic[description["topic"]]
            if description["error_code"] != 0 or len(with_leader) != expected:
                missing[description["topic"]] = f"{len(with_leader)} of {expected} partitions have a leader"
        if not missing:
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"topics not ready after {timeout_s:g} s: {missing}")
        time.sleep(0.1)


def read_topic(
    bootstrap_servers: str,
    topic: str,
    *,
    idle_s: float = 1.0,
    timeout_s: float = 30.0,
) -> list[ConsumerRecord]:
    """Read every record of a topic from the beginning until no new record arrives for `idle_s`.

    Reads all partitions without a consumer group, so no offsets are committed.

    Parameters
    ----------
    bootstrap_servers : str
        Broker address, e.g. "127.0.0.1:9092".
    topic : str
        Topic to read.
    idle_s : float
        Seconds without a new record after which the topic counts as read to its end.
    timeout_s : float
        Seconds after which reading stops with an error, for a topic that never goes idle.

    Returns
    -------
    list of ConsumerRecord
        Records in offset order within each partition; keys and values are raw bytes.

    Raises
    ------
    LookupError
        If the broker does not know the topic within `timeout_s`.
    TimeoutError
        If records still arrive after `timeout_s`.
    """
    deadline = time.monotonic() + timeout_s
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        client_id="agentload-tests-reader",
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        partitions = consumer.partitions_for_topic(topic)
        while not partitions:
            if time.monotonic() >= deadline:
                raise LookupError(f"topic {topic!r} not found on {bootstrap_servers} after {timeout_s:g} s")
            time.sleep(0.1)
            # Each call asks the broker again while the topic is missing from the cached metadata.
            partitions = consumer.partitions_for_topic(topic)

        consumer.assign([TopicPartition(topic, partition) for partition in sorted(partitions)])
        consumer.seek_to_beginning()

        records: list[ConsumerRecord] = []
        last_record_at = time.monotonic()
        while time.monotonic() - last_record_at < idle_s:
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"topic {topic!r} kept receiving records for {timeout_s:g} s "
                    f"({len(records)} read); raise timeout_s or stop the producer first"
                )
            batches = consumer.poll(timeout_ms=100)
            for partition in sorted(batches, key=lambda tp: tp.partition):
                records.extend(batches[partition])
            if batches:
                last_record_at = time.monotonic()
        return records
    finally:
        consumer.close()
