"""Helpers for the Faust worker tests: the agentload command as subprocesses, and their outputs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.kafka_support import read_topic

REPO_ROOT = Path(__file__).resolve().parent.parent
AB_FILE = "anonymous-bank-calls/anonymous_bank_1999-08-01_to_08-14.csv"


def agentload_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def agentload(*args: str, timeout_s: float = 120.0) -> subprocess.CompletedProcess:
    """Run ``agentload ARGS`` to its end and return the finished process; fail on a non-zero exit."""
    process = subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env=agentload_env(),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=REPO_ROOT,
    )
    assert process.returncode == 0, f"agentload {' '.join(args)} exited {process.returncode}:\n{process.stderr[-3000:]}"
    return process


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WorkerProcess:
    """One ``agentload worker`` subprocess with its own HTTP port and log file."""

    def __init__(self, broker: str, prefix: str, folder: Path, name: str, *extra: str):
        self.port = free_port()
        self.log_path = folder / f"{name}.log"
        folder.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streams.cli",
                "worker",
                "--broker",
                broker,
                "--topic-prefix",
                prefix,
                "--http-port",
                str(self.port),
                "--data-dir",
                str(folder / f"{name}-data"),
                "--idle-flush-s",
                "2",
                "--commit-interval-s",
                "0.2",
                "--session-timeout-s",
                "4",
                *extra,
            ],
            env=agentload_env(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
        )

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError:
            return 0, ""

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"worker exited {self.process.returncode}:\n{self.log()[-3000:]}"
            if self.get("/readyz")[0] == 200:
                return
            time.sleep(0.3)
        raise TimeoutError(f"worker not ready after {timeout_s:g} s:\n{self.log()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")


def read_json(broker: str, topic: str, idle_s: float = 1.0) -> list[dict]:
    return [json.loads(record.value) for record in read_topic(broker, topic, idle_s=idle_s, timeout_s=120.0)]


def wait_for_breaks(broker: str, topic: str, expected_ids: set[str], timeout_s: float = 90.0) -> list[dict]:
    """Read ``topic`` until it has every expected transition id, and then stays unchanged for a while."""
    deadline = time.monotonic() + timeout_s
    while True:
        events = read_json(broker, topic)
        if {event["id"] for event in events} >= expected_ids:
            # Read once more a little later, to catch transitions sent right after the expected
            # ones (an extra one, or a repeat with other content, fails the caller's comparison).
            time.sleep(3.0)
            return read_json(broker, topic)
        if time.monotonic() >= deadline:
            missing = len(expected_ids - {event["id"] for event in events})
            raise TimeoutError(f"{topic}: {missing} of {len(expected_ids)} expected transitions missing after {timeout_s:g} s")
        time.sleep(1.0)


def by_id(events: list[dict]) -> dict[str, dict]:
    """Return the events by id, checking that every repeat of an id carries the same event."""
    unique: dict[str, dict] = {}
    for event in events:
        previous = unique.setdefault(event["id"], event)
        assert previous == event, f"transition {event['id']} was sent twice with different content"
    return unique


def replay_json(path: Path, *extra: str) -> list[dict]:
    process = agentload("replay", "--json", str(path), *extra)
    return [json.loads(line) for line in process.stdout.splitlines() if line.strip()]


def consumer_lag(broker: str, group: str, topics: list[str]) -> int:
    """Return the total lag of ``group`` on ``topics``: end offsets minus committed offsets."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=broker, group_id=group, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for topic in topics for p in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(partitions)
        return sum(ends[tp] - (consumer.committed(tp) or 0) for tp in partitions)
    finally:
        consumer.close()


def wait_for_records(broker: str, topic: str, count: int, timeout_s: float = 60.0) -> None:
    """Return as soon as ``topic`` holds ``count`` records, polling one open consumer."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=broker, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest")
    try:
        partitions = consumer.partitions_for_topic(topic)
        consumer.assign([TopicPartition(topic, partition) for partition in sorted(partitions)])
        seen = 0
        deadline = time.monotonic() + timeout_s
        while seen < count:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{topic} has {seen} records after {timeout_s:g} s, expected {count}")
            seen += sum(len(records) for records in consumer.poll(timeout_ms=20).values())
    finally:
        consumer.close()


def wait_until_settled(broker: str, prefix: str, timeout_s: float = 120.0, quiet_s: float = 12.0) -> list[dict]:
    """Wait until the group has committed all input and recovery-breaks got nothing new for ``quiet_s``.

    The last transitions come from the idle flush, up to ``--idle-flush-s`` plus one tick (5 s each
    in these tests) after a partition's last input. A partition restored after a rebalance reads
    its last input again before that. ``quiet_s`` must outlast both.
    """
    group = f"{prefix}.agentload-worker"
    inputs = [f"{prefix}.{topic}" for topic in ("call-events", "break-actions", "audio-features")]
    deadline = time.monotonic() + timeout_s
    count = -1
    quiet_since = time.monotonic()
    while True:
        events = read_json(broker, f"{prefix}.recovery-breaks", idle_s=0.5)
        if len(events) != count or consumer_lag(broker, group, inputs) > 0:
            count = len(events)
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            return events
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{prefix}: the workers did not settle within {timeout_s:g} s ({count} transitions so far)")
        time.sleep(1.0)
