"""A worker killed mid-stream and started again recovers its agents from the changelog."""

from __future__ import annotations

import json
import re
import signal

import pytest

from streams import anonymous_bank
from tests.faust_support import AB_FILE, WorkerProcess, agentload, by_id, read_json, replay_json, wait_for_breaks, wait_for_records
from tests.kafka_support import read_topic

pytestmark = pytest.mark.kafka


@pytest.mark.parametrize("stop_signal", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_restart_gives_uninterrupted_result(kafka_bootstrap, kafka_topic_prefix, shared_data, tmp_path, stop_signal):
    data = shared_data / AB_FILE
    expected = by_id(replay_json(data))
    prefix = kafka_topic_prefix
    breaks_topic = f"{prefix}.recovery-breaks"
    agentload("topics", "--broker", kafka_bootstrap, "--topic-prefix", prefix, "--partitions", "2")
    # The second part is sent only after the first worker stopped, so that it stops mid-stream
    # however fast it is; one event per message keeps it busy for a while all the same.
    with open(data, encoding="utf-8", newline="") as lines:
        calls, _ = anonymous_bank.read_calls(lines)
    split = len(calls) * 3 // 5
    first_part = tmp_path / "first.jsonl"
    second_part = tmp_path / "second.jsonl"
    first_part.write_text("".join(json.dumps(call) + "\n" for call in calls[:split]))
    second_part.write_text("".join(json.dumps(call) + "\n" for call in calls[split:]))
    agentload("produce", "--broker", kafka_bootstrap, "--topic-prefix", prefix, "--no-pack", str(first_part))

    first = WorkerProcess(kafka_bootstrap, prefix, tmp_path, "first", "--batch-max", "50")
    try:
        first.wait_ready()
        wait_for_records(kafka_bootstrap, breaks_topic, 4)
    finally:
        first.stop(stop_signal)
    partial = by_id(read_json(kafka_bootstrap, breaks_topic))
    agentload("produce", "--broker", kafka_bootstrap, "--topic-prefix", prefix, str(second_part))

    second = WorkerProcess(kafka_bootstrap, prefix, tmp_path, "second")
    try:
        second.wait_ready()
        events = wait_for_breaks(kafka_bootstrap, breaks_topic, set(expected))
    finally:
        assert second.stop() == 0

    assert 4 <= len(partial) < len(expected)
    assert by_id(events) == expected
    restored = [int(count) for count in re.findall(r"restored (\d+) agents", second.log())]
    assert 0 < sum(restored) <= 22
    changelog = read_topic(kafka_bootstrap, f"{prefix}.agentload-worker-engine-state-changelog")
    assert changelog
    for record in changelog:
        assert record.key.startswith(f"{record.partition}/".encode())
