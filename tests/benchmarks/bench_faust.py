"""Benchmark: one agentload worker over Kafka against Faust and aiokafka baselines on the same topics.

Run: ``KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 python -m tests.benchmarks.bench_faust [--agents 480 --hours 2]``.

It writes one simulated floor into fresh topics one event per message, and the same floor over
four times the hours packed, then measures events per second for the items below. The packed
worker gets through the shorter floor in under two seconds, and such a run can end before a
second poll of ``/metrics`` times it. Measured:

- the agentload worker, unpacked and packed (``agentload worker`` as a subprocess; the rate counts
  from its first to its last processed event, read off ``/metrics`` every 0.5 s: the end is the
  worker's own time of its last input, so the poll interval costs no precision);
- a no-op Faust agent on the unpacked topic, on stock Faust (Faust's own floor) and on the worker's
  Faust app class (:mod:`streams.faust_consumer`), to show what that class alone changes;
- a typical Faust agent that decodes each message and writes its table once per event;
- a bare aiokafka consumer decoding the same one-event messages with ``json.loads`` (the ceiling),
  and the same consumer on the packed messages;

and the p99 latency from an event's produce time to the break event it causes, with events sent
at a steady rate and ``lateness_s = 0`` (the ordering buffer holds every event for the lateness
bound, which is configuration, not processing time). Each Faust run is its own process with its
own consumer group, and the rate excludes start-up and the group join.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


# Data ------------------------------------------------------------------------------------------


def floor_events(agents: int, hours: float, start_ts: float) -> list[dict]:
    from streams.simulator import FloorSimulator, SimulatorSettings

    simulator = FloorSimulator(SimulatorSettings(agents=agents, team_size=12, seed=21), start_ts)
    events = []
    t = start_ts
    while t < start_ts + hours * 3600.0:
        t += 60.0
        for event in simulator.events_until(t):
            event.pop("_t")
            events.append(event)
    return events


def create_topics(broker: str, prefix: str, partitions: int) -> None:
    run_cli("topics", "--broker", broker, "--topic-prefix", prefix, "--partitions", str(partitions))


def run_cli(*args: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    subprocess.run([sys.executable, "-m", "streams.cli", *args], check=True, env=env, cwd=REPO_ROOT, capture_output=True)


def produce(broker: str, prefix: str, events: list[dict], pack: bool, partitions: int) -> int:
    """Send ``events`` as agentload's producer does; return the number of messages."""
    path = Path(tempfile.mkstemp(suffix=".jsonl")[1])
    try:
        path.write_text("".join(json.dumps(event, separators=(",", ":")) + "\n" for event in events))
        run_cli("produce", "--broker", broker, "--topic-prefix", prefix, *([] if pack else ["--no-pack"]), str(path))
    finally:
        path.unlink()
    return 0


# agentload worker --------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def events_counted(port: int) -> tuple[float, float] | None:
    """Return (events applied, wall time of the last input) from the worker's /metrics."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    lines = text.splitlines()
    applied = sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("agentload_events_total{"))
    last_input = [float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("agentload_last_event_timestamp_seconds ")]
    return applied, last_input[0] if last_input else 0.0


def worker_rate(broker: str, prefix: str, total: int, config: str | None = None) -> float:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    data_dir = tempfile.mkdtemp()
    command = [sys.executable, "-m", "streams.cli"]
    if config:
        command += ["--config", config]
    # The last events wait in the ordering buffer until the idle flush; the rate ends at the last
    # input the worker received, so that wait does not count.
    command += ["--log-level", "WARNING", "worker", "--broker", broker, "--topic-prefix", prefix, "--http-port", str(port),
                "--data-dir", data_dir, "--idle-flush-s", "0.5"]
    process = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        first_at = None
        first_count = 0.0
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            counted = events_counted(port)
            now = time.time()
            if counted and counted[0] and first_at is None:
                first_at, first_count = now, counted[0]
            if counted is not None and counted[0] >= total:
                return (total - first_count) / (counted[1] - first_at)
            # Each scrape walks every agent; a tighter poll would slow the worker it measures.
            time.sleep(0.5)
        raise TimeoutError("the worker did not process every event within 600 s")
    finally:
        process.terminate()
        process.wait()


# Faust baselines ---------------------------------------------------------------------------------

_BASELINE = r'''
import asyncio, json, sys, time
import faust

broker, topic, total, mode, app_id, out, partitions = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6], int(sys.argv[7])
sys.path.insert(0, sys.argv[8])
from streams.faust_consumer import BUFFER_MAX_MESSAGES, WorkerApp
App = WorkerApp if mode == "noop-worker-app" else faust.App
# The agentload worker's consumer settings, so that only the agent's work differs.
app = App(app_id, broker=f"kafka://{broker}", store="memory://", web_enabled=False, topic_disable_leader=True,
                table_standby_replicas=0, autodiscover=False, consumer_auto_offset_reset="earliest",
                consumer_max_fetch_size=4 * 1_048_576, stream_wait_empty=False,
          stream_buffer_maxsize=BUFFER_MAX_MESSAGES)
source = app.topic(topic, key_serializer="raw", value_serializer="raw")
table = app.Table("per-agent", default=dict, partitions=partitions) if mode == "table" else None
state = {"count": 0, "first": None}

@app.agent(source, concurrency=1)
async def consume(stream):
    async for event in stream.events():
        if state["first"] is None:
            state["first"] = time.monotonic()
        if mode == "table":
            document = json.loads(event.value)
            table[document["agent_id"]] = {"ts": document["ts"], "type": document["type"]}
        state["count"] += 1
        if state["count"] == total:
            with open(out, "w") as handle:
                handle.write(str((total - 1) / (time.monotonic() - state["first"])))
            app._crash_reason = None
            asyncio.get_event_loop().call_soon(lambda: sys.exit(0))

worker = faust.Worker(app, loglevel="warning", quiet=True)
# As in agentload worker: the spinner would turn every debug call into a log record.
worker.spinner = None
worker.execute_from_commandline()
'''


def faust_baseline_rate(broker: str, topic: str, total: int, mode: str, partitions: int) -> float:
    out = Path(tempfile.mkstemp()[1])
    script = Path(tempfile.mkstemp(suffix=".py")[1])
    script.write_text(_BASELINE)
    app_id = f"bench-{mode}-{uuid.uuid4().hex[:8]}"
    process = subprocess.Popen(
        [sys.executable, str(script), broker, topic, str(total), mode, app_id, str(out), str(partitions), str(REPO_ROOT)],
        cwd=tempfile.mkdtemp(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            text = out.read_text() if out.exists() else ""
            if text:
                return float(text)
            time.sleep(0.2)
        raise TimeoutError(f"Faust baseline {mode} did not finish within 600 s")
    finally:
        process.terminate()
        process.wait()
        out.unlink(missing_ok=True)
        script.unlink(missing_ok=True)


async def bare_consumer_rate(broker: str, topic: str, total_events: int) -> float:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=broker, group_id=None, auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        count = 0
        first_at = None
        while count < total_events:
            batches = await consumer.getmany(timeout_ms=1000, max_records=2000)
            for records in batches.values():
                for record in records:
                    if first_at is None:
                        first_at = time.monotonic()
                    document = json.loads(record.value)
                    count += len(document) if isinstance(document, list) else 1
        return count / (time.monotonic() - first_at)
    finally:
        await consumer.stop()


# Latency -----------------------------------------------------------------------------------------


def latency_p99_s(broker: str, prefix: str, agents: int, events_per_s: float, seconds: float) -> tuple[float, int, float]:
    """Send a floor at ``events_per_s`` with event time mapped to send time; return (p99 s, breaks, rate sent)."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    from streams.codec import dumps
    from streams.events import format_ts, parse_ts
    from streams.kafka_cli import team_partition

    config_path = Path(tempfile.mkstemp(suffix=".toml")[1])
    config_path.write_text("[runtime]\nlateness_s = 0.0\n")
    create_topics(broker, prefix, 2)
    sample = floor_events(agents, 1.0, 0.0)
    speed = events_per_s / (len(sample) / 3600.0)

    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    command = [sys.executable, "-m", "streams.cli", "--config", str(config_path), "--log-level", "WARNING", "worker",
               "--broker", broker, "--topic-prefix", prefix, "--http-port", str(port), "--data-dir", tempfile.mkdtemp()]
    worker = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.3)

        wall_start = time.time() + 0.5
        events = floor_events(agents, seconds * speed / 3600.0, 0.0)
        producer = KafkaProducer(bootstrap_servers=broker, linger_ms=1, acks=1)
        topic = f"{prefix}.call-events"
        sent = 0
        # Events due within the same few milliseconds go out together, packed per partition as
        # agentload's own producers send them.
        packs: dict[tuple[str, int], list[bytes]] = {}

        def send_packs() -> None:
            for (target, partition), items in packs.items():
                producer.send(target, value=b"[" + b",".join(items) + b"]", partition=partition)
            packs.clear()
            producer.flush()

        for event in events:
            event_ts = parse_ts(event["ts"])
            send_at = wall_start + event_ts / speed
            # Event time is wall time, so the worker meets a live floor.
            event["ts"] = format_ts(send_at)
            wait_s = send_at - time.time()
            if wait_s > 0.002:
                send_packs()
                time.sleep(wait_s)
            target = f"{prefix}.break-actions" if "action" in event else topic
            packs.setdefault((target, team_partition(event["team_id"], 2)), []).append(dumps(event).encode())
            sent += 1
        send_packs()
        sent_rate = sent / (time.time() - wall_start)
        time.sleep(3.0)

        consumer = KafkaConsumer(bootstrap_servers=broker, group_id=None, auto_offset_reset="earliest")
        breaks_topic = f"{prefix}.recovery-breaks"
        consumer.assign([TopicPartition(breaks_topic, p) for p in consumer.partitions_for_topic(breaks_topic)])
        latencies = []
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < 2.0:
            for records in consumer.poll(timeout_ms=200).values():
                idle_since = time.monotonic()
                for record in records:
                    cloudevent = json.loads(record.value)
                    if cloudevent["type"].endswith(".suggested"):
                        latencies.append(record.timestamp / 1000.0 - parse_ts(cloudevent["time"]))
        consumer.close()
    finally:
        worker.terminate()
        worker.wait()
        config_path.unlink()
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else float("nan")
    return p99, len(latencies), sent_rate


# Main --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=480, help="simulated agents (default 480)")
    parser.add_argument("--hours", type=float, default=2.0, help="simulated hours of events (default 2)")
    parser.add_argument("--partitions", type=int, default=2, help="partitions of every topic (default 2)")
    parser.add_argument("--latency-rate", type=float, default=5000.0, help="events per second sent in the latency run (default 5000)")
    parser.add_argument("--latency-seconds", type=float, default=20.0, help="length of the latency run (default 20)")
    parser.add_argument("--latency-only", action="store_true", help="run only the latency measurement")
    args = parser.parse_args(argv)
    broker = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if not broker:
        print("bench_faust: set KAFKA_BOOTSTRAP_SERVERS to a broker, e.g. from `deploy/kafka/broker start`", file=sys.stderr)
        return 2
    sys.path.insert(0, str(REPO_ROOT))

    run = f"bench-{uuid.uuid4().hex[:8]}"
    if args.latency_only:
        p99_s, breaks, sent_rate = latency_p99_s(broker, f"{run}.latency", args.agents, args.latency_rate, args.latency_seconds)
        print(f"decision latency p99: {p99_s * 1000:.0f} ms over {breaks} suggested breaks at {sent_rate:.0f} events/s sent, packed (target <= 250 ms)")
        return 0
    events = floor_events(args.agents, args.hours, 1_772_438_400.0)
    packed_events = floor_events(args.agents, 4 * args.hours, 1_772_438_400.0)
    total = len(events)
    unpacked, packed = f"{run}.unpacked", f"{run}.packed"
    for prefix, pack, floor in ((unpacked, False, events), (packed, True, packed_events)):
        create_topics(broker, prefix, args.partitions)
        produce(broker, prefix, floor, pack, args.partitions)
    print(f"{total} events of {args.agents} simulated agents over {args.hours:g} h, {args.partitions} partitions; "
          f"{len(packed_events)} over {4 * args.hours:g} h packed")

    worker_unpacked = worker_rate(broker, unpacked, total)
    worker_packed = worker_rate(broker, packed, len(packed_events))
    call_events = sum(1 for e in events if "action" not in e)
    noop = faust_baseline_rate(broker, f"{unpacked}.call-events", call_events, "noop", args.partitions)
    noop_worker_app = faust_baseline_rate(broker, f"{unpacked}.call-events", call_events, "noop-worker-app", args.partitions)
    table = faust_baseline_rate(broker, f"{unpacked}.call-events", call_events, "table", args.partitions)
    bare = asyncio.run(bare_consumer_rate(broker, f"{unpacked}.call-events", call_events))
    bare_packed = asyncio.run(bare_consumer_rate(broker, f"{packed}.call-events", call_events))
    p99_s, breaks, sent_rate = latency_p99_s(broker, f"{run}.latency", args.agents, args.latency_rate, args.latency_seconds)

    print(f"worker, one event per message: {worker_unpacked:10.0f} events/s")
    print(f"worker, packed:                {worker_packed:10.0f} events/s")
    print(f"no-op Faust agent:             {noop:10.0f} events/s")
    print(f"no-op agent on the worker's app class: {noop_worker_app:.0f} events/s")
    print(f"Faust agent, table per event:  {table:10.0f} events/s")
    print(f"bare aiokafka consumer:        {bare:10.0f} events/s (one event per message, json.loads)")
    print(f"bare consumer, packed:         {bare_packed:10.0f} events/s")
    print(f"unpacked / no-op:  {worker_unpacked / noop:.2f}  (target >= 0.8)")
    print(f"unpacked / table:  {worker_unpacked / table:.2f}  (target >= 2)")
    print(f"unpacked / no-op on the worker's app class:  {worker_unpacked / noop_worker_app:.2f}")
    print(f"packed:            {worker_packed:.0f} events/s  (target >= 20000)")
    print(f"packed / bare:     {worker_packed / bare:.2f}  (target >= 0.25)")
    print(f"decision latency p99: {p99_s * 1000:.0f} ms over {breaks} suggested breaks at {sent_rate:.0f} events/s sent, packed (target <= 250 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
