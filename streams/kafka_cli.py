"""The Kafka commands of ``agentload``: ``worker``, ``topics``, ``produce`` and ``tail``.

``produce`` is agentload's own producer. It keys each message by ``agent_id`` and picks the
partition from a stable hash of the event's team (CRC-32 of ``team_id``, or of the configured
default team), so all agents of a team share one partition and one engine, and team gating counts
the whole team. By default it packs consecutive events bound for one partition into one message,
a JSON array in event order; packed messages carry no key, because their events belong to several
agents.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import zlib
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from streams import anonymous_bank
from streams.codec import dumps
from streams.config import Config
from streams.events import CALL_EVENTS, InvalidEventError, parse_ts, topic_of_document
from streams.faust_app import AGENT_LOAD, ALL_TOPICS, INPUT_TOPICS, topic_name

log = logging.getLogger("agentload.kafka")
# kafka-python logs every connection at INFO.
logging.getLogger("kafka").setLevel(logging.WARNING)

DEFAULT_BROKER = "127.0.0.1:9092"
# Keep a packed message well under the broker's default message.max.bytes of about 1 MB.
MAX_PACK_BYTES = 512 * 1024


def default_broker() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip() or DEFAULT_BROKER


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--broker",
        default=None,
        metavar="HOST:PORT",
        help=f"Kafka bootstrap servers (default: $KAFKA_BOOTSTRAP_SERVERS, else {DEFAULT_BROKER})",
    )
    parser.add_argument(
        "--topic-prefix",
        default=os.environ.get("AGENTLOAD_TOPIC_PREFIX") or None,
        metavar="PREFIX",
        help="prefix of every topic name, PREFIX.call-events and so on (default: $AGENTLOAD_TOPIC_PREFIX, else none)",
    )


def team_partition(team_id: str, partitions: int) -> int:
    """Return the partition of a team's events: CRC-32 of the team id modulo ``partitions``."""
    return zlib.crc32(team_id.encode("utf-8")) % partitions


def _partition_counts(broker: str, topics: Iterable[str]) -> dict[str, int]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=broker, client_id="agentload-metadata")
    try:
        counts = {}
        for topic in topics:
            partitions = consumer.partitions_for_topic(topic)
            counts[topic] = len(partitions) if partitions else 0
        return counts
    finally:
        consumer.close()


# worker ---------------------------------------------------------------------------------------


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    _add_common(parser)
    parser.add_argument(
        "--http-port", type=int, default=6066, help="port of /metrics, /healthz and /readyz on 127.0.0.1; 0 turns them off (default 6066)"
    )
    parser.add_argument("--data-dir", default=None, metavar="DIR", help="Faust data folder (default: Faust's, under the current folder)")
    parser.add_argument(
        "--idle-flush-s",
        type=float,
        default=None,
        metavar="S",
        help="apply a partition's buffered events after S wall-clock seconds without input (default: runtime.lateness_s)",
    )
    parser.add_argument(
        "--commit-interval-s", type=float, default=2.8, metavar="S", help="seconds between offset commits (default 2.8)"
    )
    parser.add_argument(
        "--session-timeout-s",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds after which the group gives a silent (crashed) worker's partitions to others (default 10)",
    )
    parser.add_argument("--batch-max", type=int, default=1000, help="messages taken per batch at most (default 1000)")
    parser.add_argument(
        "--raw-topic",
        action="append",
        default=[],
        metavar="PLATFORM=TOPIC",
        help="also read native events of PLATFORM (amazon-connect, twilio, genesys) from TOPIC, convert them "
        "as agentload ingest does, and send them to call-events (repeatable)",
    )


def run_worker(args: argparse.Namespace, config: Config) -> int:
    from faust import Worker

    from streams.faust_app import create_app

    from streams.raw_bridge import parse_raw_topics

    try:
        raw_topics = parse_raw_topics(args.raw_topic)
    except ValueError as exc:
        print(f"agentload worker: {exc}", file=sys.stderr)
        return 2
    broker = args.broker or default_broker()
    inputs = [topic_name(args.topic_prefix, base) for base in INPUT_TOPICS]
    try:
        counts = _partition_counts(broker, inputs)
    except Exception as exc:  # kafka-python raises several unrelated types when no broker responds
        print(f"agentload worker: cannot read topic metadata from {broker} ({exc}); check --broker", file=sys.stderr)
        return 2
    missing = [topic for topic, count in counts.items() if count == 0]
    if missing:
        print(
            f"agentload worker: topics {', '.join(missing)} do not exist on {broker}; create them with "
            f"`agentload topics --broker {broker}` and the same --topic-prefix",
            file=sys.stderr,
        )
        return 2
    if len(set(counts.values())) != 1:
        print(
            f"agentload worker: the input topics have different partition counts {counts}; they must be equal, "
            "because one worker owns partition p of all three; recreate them with `agentload topics`",
            file=sys.stderr,
        )
        return 2
    for name in ("idle_flush_s", "commit_interval_s", "session_timeout_s"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            print(f"agentload worker: --{name.replace('_', '-')} {value:g} is invalid; use a positive number of seconds", file=sys.stderr)
            return 2

    app, _ = create_app(
        broker,
        args.topic_prefix,
        config,
        next(iter(counts.values())),
        http_port=args.http_port,
        data_dir=args.data_dir,
        idle_flush_s=args.idle_flush_s,
        commit_interval_s=args.commit_interval_s,
        session_timeout_s=args.session_timeout_s,
        batch_max=args.batch_max,
        raw_topics=raw_topics,
    )
    worker = Worker(app, loglevel=args.log_level.lower(), quiet=True)
    # Faust's terminal spinner turns the root logger to DEBUG so that it can spin on every
    # record, and then every debug call of Faust and aiokafka builds a log record.
    worker.spinner = None
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


# topics ---------------------------------------------------------------------------------------


def add_topics_arguments(parser: argparse.ArgumentParser) -> None:
    _add_common(parser)
    parser.add_argument("--partitions", type=int, default=4, help="partitions of every topic (default 4)")
    parser.add_argument("--replication-factor", type=int, default=1, help="replicas of every partition (default 1)")


def run_topics(args: argparse.Namespace, config: Config) -> int:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError, for_code

    if args.partitions < 1 or args.replication_factor < 1:
        print("agentload topics: --partitions and --replication-factor must be at least 1", file=sys.stderr)
        return 2
    broker = args.broker or default_broker()
    names = {base: topic_name(args.topic_prefix, base) for base in ALL_TOPICS}
    new_topics = [
        NewTopic(
            name=name,
            num_partitions=args.partitions,
            replication_factor=args.replication_factor,
            topic_configs={"cleanup.policy": "compact"} if base == AGENT_LOAD else {},
        )
        for base, name in names.items()
    ]
    admin = KafkaAdminClient(bootstrap_servers=broker, client_id="agentload-topics")
    try:
        response = admin.create_topics(new_topics, timeout_ms=30_000)
        existing = []
        for topic, error_code, error_message in response.topic_errors:
            if error_code == 0:
                print(f"created {topic} ({args.partitions} partitions)")
                continue
            error = for_code(error_code)
            if error is TopicAlreadyExistsError:
                existing.append(topic)
                continue
            print(f"agentload topics: creating {topic} failed: {error_message or error.__name__}", file=sys.stderr)
            return 1
    finally:
        admin.close()

    if existing:
        counts = _partition_counts(broker, existing)
        for topic in existing:
            print(f"exists  {topic} ({counts[topic]} partitions)")
        inputs = [names[base] for base in INPUT_TOPICS]
        all_counts = _partition_counts(broker, inputs)
        if len(set(all_counts.values())) != 1:
            print(f"agentload topics: the input topics have different partition counts {all_counts}; delete and recreate them", file=sys.stderr)
            return 1
    return 0


# produce --------------------------------------------------------------------------------------


def add_produce_arguments(parser: argparse.ArgumentParser) -> None:
    _add_common(parser)
    parser.add_argument("file", nargs="?", help="recorded events (jsonl or anonymous-bank, as for replay); - reads standard input")
    parser.add_argument("--format", choices=("auto", "jsonl", "anonymous-bank"), default="auto", help="format of FILE (default auto)")
    parser.add_argument("--utc-offset", default="+03:00", help="UTC offset of anonymous-bank local times (default +03:00)")
    parser.add_argument("--simulator", action="store_true", help="produce the built-in floor simulator's events instead of a file")
    parser.add_argument("--agents", type=int, default=48, help="simulated agents (default 48)")
    parser.add_argument("--team-size", type=int, default=12, help="agents per simulated team (default 12)")
    parser.add_argument("--seed", type=int, default=7, help="simulator seed (default 7)")
    parser.add_argument("--start", default="2026-03-02T08:00:00Z", metavar="TS", help="simulated start time, RFC 3339 (default 2026-03-02T08:00:00Z)")
    parser.add_argument("--duration-s", type=float, default=3600.0, metavar="S", help="simulated seconds to produce (default 3600)")
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        metavar="X",
        help="pace by event time at X times real time (1 is real time); 0 sends as fast as possible (default 0)",
    )
    parser.add_argument("--no-pack", dest="pack", action="store_false", help="send one event per message instead of packed arrays")
    parser.add_argument("--pack-size", type=int, default=200, help="events per packed message at most (default 200)")


def _file_events(stream: BinaryIO, args: argparse.Namespace) -> Iterator[dict | bytes]:
    """Yield the events of ``stream`` (``args.file``), and as bytes the lines that are not JSON objects or arrays."""
    from streams.replay import read_input

    source = "stdin" if args.file == "-" else args.file
    with stream:
        for _, _, item in read_input(stream, args.format, args.utc_offset, source):
            if isinstance(item, dict):
                yield item
                continue
            try:
                document = json.loads(item)
            except ValueError:
                # Sent as it is (also when not UTF-8): the worker's dead letter names what is wrong.
                yield item
                continue
            if isinstance(document, list):
                yield from (element if isinstance(element, dict) else dumps(element).encode("utf-8") for element in document)
            elif isinstance(document, dict):
                yield document
            else:
                yield item


def _simulator_events(args: argparse.Namespace) -> Iterator[dict]:
    from streams.simulator import FloorSimulator, SimulatorSettings

    start_ts = parse_ts(args.start, "--start")
    simulator = FloorSimulator(SimulatorSettings(agents=args.agents, team_size=args.team_size, seed=args.seed), start_ts)
    # The simulated agents never receive offers, so they never accept or decline one and the
    # worker's offers expire. Steps of a minute keep memory flat for long runs.
    t = start_ts
    end = start_ts + args.duration_s
    while t < end:
        t = min(end, t + 60.0)
        for event in simulator.events_until(t):
            event.pop("_t", None)
            yield event


def run_produce(args: argparse.Namespace, config: Config) -> int:
    from kafka import KafkaProducer

    if args.simulator == (args.file is not None):
        print("agentload produce: give either FILE or --simulator", file=sys.stderr)
        return 2
    if args.rate < 0 or args.pack_size < 1:
        print("agentload produce: --rate must be 0 or more and --pack-size at least 1", file=sys.stderr)
        return 2
    broker = args.broker or default_broker()
    names = {base: topic_name(args.topic_prefix, base) for base in INPUT_TOPICS}
    counts = _partition_counts(broker, names.values())
    missing = [topic for topic, count in counts.items() if count == 0]
    if missing:
        print(f"agentload produce: topics {', '.join(missing)} do not exist; create them with `agentload topics`", file=sys.stderr)
        return 2

    stream = None
    if args.file == "-":
        stream = sys.stdin.buffer
    elif args.file is not None:
        try:
            stream = open(args.file, "rb")
        except OSError as exc:
            print(f"agentload produce: cannot read {args.file!r}: {exc.strerror}", file=sys.stderr)
            return 2
    try:
        source = _simulator_events(args) if stream is None else _file_events(stream, args)
        producer = KafkaProducer(
            bootstrap_servers=broker,
            client_id="agentload-produce",
            acks="all",
            linger_ms=5,
            batch_size=1_048_576,
            max_request_size=1_048_576,
        )
    except (anonymous_bank.AnonymousBankError, InvalidEventError, OSError) as exc:
        if stream is not None:
            stream.close()
        print(f"agentload produce: {exc}", file=sys.stderr)
        return 2
    try:
        sent_events, sent_messages = _produce(producer, source, names, counts, config.runtime.default_team, args)
        producer.flush()
    except (anonymous_bank.AnonymousBankError, InvalidEventError) as exc:
        print(f"agentload produce: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"agentload produce: cannot read {args.file!r}: {exc.strerror}", file=sys.stderr)
        return 2
    finally:
        producer.close()
    print(f"agentload produce: sent {sent_events} events in {sent_messages} messages", file=sys.stderr)
    return 0


def publish(broker: str, topic_prefix: str, documents, default_team: str = "default") -> tuple[int, int]:
    """Send input documents to their topics, packed per partition, as ``agentload produce`` does.

    Returns (events, messages) sent. Raises OSError when the topics do not exist.
    """
    from kafka import KafkaProducer

    names = {base: topic_name(topic_prefix, base) for base in INPUT_TOPICS}
    counts = _partition_counts(broker, names.values())
    missing = [topic for topic, count in counts.items() if count == 0]
    if missing:
        raise OSError(f"topics {', '.join(missing)} do not exist on {broker}; create them with `agentload topics`")
    producer = KafkaProducer(bootstrap_servers=broker, client_id="agentload-publish", acks="all", linger_ms=5)
    settings = argparse.Namespace(rate=0.0, pack=True, pack_size=200)
    try:
        sent = _produce(producer, documents, names, counts, default_team, settings)
        producer.flush()
    finally:
        producer.close()
    return sent


def _produce(producer, source, names: dict[str, str], counts: dict[str, int], default_team: str, args) -> tuple[int, int]:
    packs: dict[tuple[str, int], list[bytes]] = {}
    pack_bytes: dict[tuple[str, int], int] = {}
    sent_events = 0
    sent_messages = 0

    def send_pack(slot: tuple[str, int]) -> None:
        nonlocal sent_messages
        items = packs.pop(slot, None)
        pack_bytes.pop(slot, None)
        if items:
            producer.send(slot[0], value=b"[" + b",".join(items) + b"]", partition=slot[1])
            sent_messages += 1

    first_ts = None
    wall_start = time.monotonic()
    for document in source:
        if isinstance(document, bytes):
            topic = names[CALL_EVENTS]
            producer.send(topic, value=document, partition=0)
            sent_messages += 1
            continue
        topic = names[topic_of_document(document)]
        team = document.get("team_id") if isinstance(document.get("team_id"), str) else default_team
        partition = team_partition(team, counts[topic])
        value = dumps(document).encode("utf-8")
        sent_events += 1

        if args.rate > 0:
            try:
                ts = parse_ts(document.get("ts"))
            except InvalidEventError:
                ts = None
            if ts is not None:
                first_ts = ts if first_ts is None else first_ts
                wait_s = (ts - first_ts) / args.rate - (time.monotonic() - wall_start)
                if wait_s > 0:
                    for slot in list(packs):
                        send_pack(slot)
                    producer.flush()
                    time.sleep(wait_s)

        if not args.pack:
            agent_id = document.get("agent_id")
            key = agent_id.encode("utf-8") if isinstance(agent_id, str) else None
            producer.send(topic, key=key, value=value, partition=partition)
            sent_messages += 1
            continue
        slot = (topic, partition)
        if pack_bytes.get(slot, 0) + len(value) > MAX_PACK_BYTES:
            send_pack(slot)
        packs.setdefault(slot, []).append(value)
        pack_bytes[slot] = pack_bytes.get(slot, 0) + len(value) + 1
        if len(packs[slot]) >= args.pack_size:
            send_pack(slot)
    for slot in list(packs):
        send_pack(slot)
    return sent_events, sent_messages


# tail -----------------------------------------------------------------------------------------


def add_tail_arguments(parser: argparse.ArgumentParser) -> None:
    _add_common(parser)
    parser.add_argument("topic", help="topic to read, without the prefix: recovery-breaks, agent-load, dead-letters, call-events ...")
    parser.add_argument("--json", action="store_true", help="write only the message values, one per line")
    parser.add_argument(
        "--idle-s", type=float, default=0.0, metavar="S", help="stop after S seconds without a new message (default: run until Ctrl-C)"
    )


def run_tail(args: argparse.Namespace, config: Config) -> int:
    from kafka import KafkaConsumer, TopicPartition

    broker = args.broker or default_broker()
    topic = topic_name(args.topic_prefix, args.topic)
    consumer = KafkaConsumer(bootstrap_servers=broker, client_id="agentload-tail", group_id=None, enable_auto_commit=False)
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            print(f"agentload tail: topic {topic} does not exist on {broker}; check the name and --topic-prefix", file=sys.stderr)
            return 2
        consumer.assign([TopicPartition(topic, partition) for partition in sorted(partitions)])
        consumer.seek_to_beginning()
        last_record_at = time.monotonic()
        out = sys.stdout
        while not args.idle_s or time.monotonic() - last_record_at < args.idle_s:
            batches = consumer.poll(timeout_ms=200)
            for tp in sorted(batches, key=lambda tp: tp.partition):
                for record in batches[tp]:
                    value = record.value.decode("utf-8", "replace") if record.value is not None else "null"
                    if args.json:
                        out.write(value + "\n")
                    else:
                        key = record.key.decode("utf-8", "replace") if record.key is not None else "-"
                        out.write(f"{record.partition}:{record.offset} {key} {value}\n")
            if batches:
                out.flush()
                last_record_at = time.monotonic()
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    return 0
