"""Several workers share the partitions; workers joining and leaving change nothing in the result."""

from __future__ import annotations

import signal

import pytest

from tests.faust_support import WorkerProcess, agentload, by_id, wait_for_breaks, wait_for_records, wait_until_settled

pytestmark = pytest.mark.kafka

PARTITIONS = "4"
# 48 agents in 4 teams of 12: billing and collections share partition 2, support is on 1 and
# retention on 0, so one partition stays empty.
SIMULATOR = ("--simulator", "--agents", "48", "--team-size", "12", "--seed", "5", "--duration-s", "10800", "--no-pack")


def produce_floor(broker: str, prefix: str) -> None:
    agentload("topics", "--broker", broker, "--topic-prefix", prefix, "--partitions", PARTITIONS)
    agentload("produce", "--broker", broker, "--topic-prefix", prefix, *SIMULATOR)


def test_rebalances_give_single_worker_result(kafka_bootstrap, kafka_topic_prefix, tmp_path):
    single_prefix = f"{kafka_topic_prefix}.single"
    produce_floor(kafka_bootstrap, single_prefix)
    single = WorkerProcess(kafka_bootstrap, single_prefix, tmp_path, "single", "--idle-flush-s", "5")
    try:
        single.wait_ready()
        expected = by_id(wait_until_settled(kafka_bootstrap, single_prefix))
    finally:
        assert single.stop() == 0

    shared_prefix = f"{kafka_topic_prefix}.shared"
    produce_floor(kafka_bootstrap, shared_prefix)
    first = WorkerProcess(kafka_bootstrap, shared_prefix, tmp_path, "first", "--idle-flush-s", "5", "--batch-max", "50")
    second = WorkerProcess(kafka_bootstrap, shared_prefix, tmp_path, "second", "--idle-flush-s", "5", "--batch-max", "50")
    third = None
    try:
        first.wait_ready()
        second.wait_ready()
        wait_for_records(kafka_bootstrap, f"{shared_prefix}.recovery-breaks", 2)
        third = WorkerProcess(kafka_bootstrap, shared_prefix, tmp_path, "third", "--idle-flush-s", "5")
        third.wait_ready()
        assert first.stop(signal.SIGTERM) == 0
        # Quiet output does not mean done here, because a partition restored after the last
        # rebalance reads its input again before its idle flush. Wait for the single run's ids.
        events = wait_for_breaks(kafka_bootstrap, f"{shared_prefix}.recovery-breaks", set(expected), timeout_s=120)
    finally:
        for worker in (first, second, third):
            if worker is not None:
                worker.stop()

    assert len(expected) > 20
    assert by_id(events) == expected
    assert "assigned input partitions" in third.log()
    assigned_lines = [line for line in second.log().splitlines() if "assigned input partitions" in line]
    # The second worker saw the start, the third joining and the first leaving.
    assert len(assigned_lines) >= 3
