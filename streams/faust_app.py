"""The Faust runtime: ``agentload worker`` over Kafka, with engine state in a changelog-backed table.

Each worker keeps one :class:`~streams.snapshot_state.TrackedEngine` per input partition it owns.
The three input topics (``call-events``, ``break-actions``, ``audio-features``) have the same
partition count, so Faust assigns partition *p* of all three to one worker, and that worker's
engine *p* holds the agents, ordering buffer, timers and dedupe ids of that partition. An engine is
built from the table when its partition is assigned and dropped when it is revoked.

State lives in one table whose keys start with the partition number (``3/agent/AVI``); the table
sends every entry to the changelog partition named in its key, so the changelog partition is
always the source partition, also for writes made by the timer. Messages are applied as they come
and their outputs sent at once; the state is written on every tick, after Kafka has acknowledged
every output sent before it, and contains the next input offset of each topic plus the offset of
the oldest message whose events are still buffered. When a partition is assigned, the worker restores
its engine, commits those oldest offsets for the consumer group, and so reads again from there
(see :mod:`streams.snapshot_state`). A message read again is not applied twice, and a transition
sent again after a crash keeps its id, so consumers that de-duplicate by id see each one once.

Time is event time. A timer every ``tick_interval_s`` advances each engine to its own newest
event time, sends snapshots and writes the state; a partition that got no input for
``idle_flush_s`` of wall time applies everything it buffered.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterable

import faust
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from alerts.policy import Transition
from streams import faust_consumer
from streams.codec import break_cloudevent, dead_letter_record, dumps
from streams.config import Config
from streams.engine import Origin
from streams.events import AUDIO_FEATURES, BREAK_ACTIONS, CALL_EVENTS, decode
from streams.metrics import Metrics
from streams.snapshot_state import AGENT, CLOCK, EngineStore, TrackedEngine, restore_engine

log = logging.getLogger("agentload.worker")

RECOVERY_BREAKS = "recovery-breaks"
AGENT_LOAD = "agent-load"
DEAD_LETTERS = "dead-letters"
INPUT_TOPICS = (CALL_EVENTS, BREAK_ACTIONS, AUDIO_FEATURES)
OUTPUT_TOPICS = (RECOVERY_BREAKS, AGENT_LOAD, DEAD_LETTERS)
ALL_TOPICS = INPUT_TOPICS + OUTPUT_TOPICS

STATE_TABLE = "engine-state"
CLOCK_KEY = CLOCK.encode()
# Wall seconds a restored partition waits for a message it must read again before it gives up.
REREAD_GIVE_UP_S = 60.0


def topic_name(prefix: str | None, base: str) -> str:
    """Return the Kafka topic of ``base`` (e.g. ``call-events``) under ``prefix`` (``prefix.call-events``)."""
    return f"{prefix}.{base}" if prefix else base


def app_id(prefix: str | None) -> str:
    """Return the Faust app id, which is the consumer group and names the changelog topic."""
    return topic_name(prefix, "agentload-worker")


class PartitionKeyedTable(faust.Table):
    """The engine-state table: keys start with their partition, and each batch's writes commit at once.

    Faust's own tables send a change to the partition of the event being processed, which a timer
    does not have; this one reads the partition from the key (``b"3/agent/AVI"``), so every write
    of engine *p*, from a batch or from the timer, lands in changelog partition *p*.

    A batch writes several entries, and a crash can leave only the first ones in Kafka. So every
    value starts with the tag of its write (``b"<incarnation>:<n>|"``) and each write ends with the
    ``clock`` entry of the same tag. Recovery applies entries only when the clock of their tag
    follows them; the others are dropped and listed in :attr:`aborted`, so that the new owner
    writes those keys again. An empty body marks a deleted entry; real tombstones follow one
    write later, once the deletion is committed.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # partition -> [(key, tag, value)] read from the changelog but not yet committed.
        self.pending: dict[int, list[tuple[bytes, bytes, bytes]]] = {}
        # partition -> keys whose newest record belongs to a write that never committed.
        self.aborted: dict[int, set[bytes]] = {}

    def partition_for_key(self, key: bytes) -> int:
        return int(key[: key.index(b"/")])

    def apply_changelog_batch(self, batch) -> None:
        store = self.data
        for event in batch:
            message = event.message
            key = message.key
            value = message.value
            partition = message.partition
            if value is None:
                store.pop(key, None)
                continue
            tag = value[: value.index(b"|")]
            pending = self.pending.setdefault(partition, [])
            if not key.endswith(b"/" + CLOCK_KEY):
                pending.append((key, tag, value))
                continue
            for pending_key, pending_tag, pending_value in pending:
                if pending_tag != tag:
                    self.aborted.setdefault(partition, set()).add(pending_key)
                elif pending_value.endswith(b"|"):
                    store.pop(pending_key, None)
                else:
                    store[pending_key] = pending_value
            pending.clear()
            store[key] = value

    def take_aborted(self, partition: int) -> set[bytes]:
        """Return (and forget) the keys of ``partition`` whose last write never committed."""
        aborted = self.aborted.pop(partition, set())
        aborted.update(key for key, _, _ in self.pending.pop(partition, ()))
        return aborted


class _EngineGroup:
    """All partition engines of a worker seen as one, for the metrics collector.

    Counters of engines dropped on revocation are kept, so exported counters never go down while
    the process runs.
    """

    def __init__(self, engines: dict[int, TrackedEngine]):
        self._engines = engines
        self.retired_counts: dict = {}
        self.retired_transition_counts: dict = {}

    def retire(self, engine: TrackedEngine) -> None:
        for key, count in engine.counts.items():
            self.retired_counts[key] = self.retired_counts.get(key, 0) + count
        for key, count in engine.transition_counts.items():
            self.retired_transition_counts[key] = self.retired_transition_counts.get(key, 0) + count

    @staticmethod
    def _sum(dicts: Iterable[dict]) -> dict:
        total: dict = {}
        for counts in dicts:
            for key, count in list(counts.items()):
                total[key] = total.get(key, 0) + count
        return total

    @property
    def counts(self) -> dict:
        return self._sum([self.retired_counts, *(engine.counts for engine in list(self._engines.values()))])

    @property
    def transition_counts(self) -> dict:
        return self._sum(
            [self.retired_transition_counts, *(engine.transition_counts for engine in list(self._engines.values()))]
        )

    @property
    def agents(self) -> dict:
        merged: dict = {}
        for engine in list(self._engines.values()):
            merged.update(engine.agents)
        return merged

    @property
    def teams(self) -> dict:
        merged: dict = {}
        for engine in list(self._engines.values()):
            merged.update(engine.teams)
        return merged

    @property
    def policy(self):
        breaks: dict = {}
        for engine in list(self._engines.values()):
            breaks.update(engine.policy.breaks)
        return _Breaks(breaks)

    @property
    def applied_until(self) -> float:
        return max((engine.applied_until for engine in list(self._engines.values())), default=0.0)


class _Breaks:
    __slots__ = ("breaks",)

    def __init__(self, breaks: dict):
        self.breaks = breaks


class WorkerRuntime:
    """The partition engines of one worker, fed by the Faust agent and advanced by the Faust timer."""

    def __init__(
        self,
        app: faust.App,
        config: Config,
        table: PartitionKeyedTable,
        topic_prefix: str | None,
        metrics: Metrics,
        idle_flush_s: float,
    ):
        self.app = app
        self.config = config
        self.table = table
        self.metrics = metrics
        self.idle_flush_s = idle_flush_s
        self.engines: dict[int, TrackedEngine] = {}
        self.stores: dict[int, EngineStore] = {}
        self.group = _EngineGroup(self.engines)
        self.last_input_at: dict[int, float] = {}
        self.forced_agents: dict[int, list[str]] = {}
        self.write_tags: dict[int, list] = {}
        self.deleted: dict[int, list[bytes]] = {}
        # Partition -> agents with outputs since the last write, stored with the touched ones.
        self.output_agents: dict[int, set[str]] = {}
        # Partition -> wall time a message was last read again after a restore.
        self.reread_progress_at: dict[int, float] = {}
        self.next_offsets: dict = {}
        self.lock = asyncio.Lock()
        self.ready = False
        self._source = config.runtime.event_source
        self._snapshot_interval_s = config.runtime.snapshot_interval_s
        self._base_of = {topic_name(topic_prefix, base): base for base in INPUT_TOPICS}
        self.input_topics = list(self._base_of)
        self.output_topics = {base: topic_name(topic_prefix, base) for base in OUTPUT_TOPICS}
        metrics.watch(self.group)

    # Partitions -------------------------------------------------------------------------------

    def engine_for(self, partition: int) -> TrackedEngine:
        """Return the engine of ``partition``, restoring it from the table the first time."""
        engine = self.engines.get(partition)
        if engine is not None:
            return engine
        prefix = f"{partition}/".encode()
        entries = {}
        for key, value in list(self.table.data.items()):
            if key.startswith(prefix) and value is not None:
                body = value[value.index(b"|") + 1 :]
                if body:
                    entries[key[len(prefix) :].decode("utf-8")] = body
        engine = restore_engine(self.config, entries)
        self.engines[partition] = engine
        aborted = {key[len(prefix) :].decode("utf-8") for key in self.table.take_aborted(partition)}
        # Writing the aborted keys again makes their committed value the newest record, before
        # compaction can drop it in favour of the aborted one.
        self.stores[partition] = EngineStore(engine, {key: value for key, value in entries.items() if key not in aborted})
        self.forced_agents[partition] = [key[len(AGENT) :] for key in aborted if key.startswith(AGENT)]
        self.write_tags[partition] = [uuid.uuid4().hex[:12], 0]
        self.output_agents[partition] = set()
        self.last_input_at[partition] = self.reread_progress_at[partition] = time.monotonic()
        log.info(
            "partition %d: restored %d agents and %d open breaks from the changelog (%d entries, %d from an unfinished write dropped); reading again from %s",
            partition,
            len(engine.agents),
            len(engine.policy.breaks),
            len(entries),
            len(aborted),
            engine.resume_offsets or "the start",
        )
        return engine

    async def on_recovered(self) -> None:
        """Restore the engines of the assigned partitions and point the group at their stored input.

        Faust calls this once the table is recovered and before it seeks the input to the
        group's committed offsets, so committing each engine's resume offsets here makes the
        consumer read again from the oldest message whose events were buffered. Faust's own
        commits run ahead of the stored state, which is written only on ticks.
        """
        async with self.lock:
            assignment = [tp for tp in self.app.consumer.assignment() if tp.topic in self._base_of]
            fresh = {tp.partition for tp in assignment} - set(self.engines)
            offsets: dict = {}
            for tp in assignment:
                engine = self.engine_for(tp.partition)
                base = self._base_of[tp.topic]
                if tp.partition in fresh:
                    # A topic the state does not name has nothing of it applied: read it all.
                    offsets[tp] = engine.resume_offsets.get(base, 0)
                else:
                    # An engine kept through the rebalance continues after its last message, because
                    # the messages fetched for it in the old generation were dropped.
                    offsets[tp] = engine.input_offsets.get(base, 0)
            consumer = self.app.consumer
            if offsets and not await consumer._commit(offsets):
                log.warning("could not commit the stored input offsets; the group is rebalancing again")
                return
            for tp, offset in offsets.items():
                if offset == 0:
                    # aiokafka's seek to the committed offset leaves the position alone when that
                    # offset is 0, and the position is still Faust's last commit: seek here.
                    await consumer.seek(tp, 0)

    async def on_revoked(self, revoked) -> None:
        async with self.lock:
            partitions = {tp.partition for tp in revoked if tp.topic in self._base_of}
            for partition in partitions:
                engine = self.engines.pop(partition, None)
                if engine is not None:
                    self.group.retire(engine)
                self.stores.pop(partition, None)
                self.last_input_at.pop(partition, None)
                self.forced_agents.pop(partition, None)
                self.write_tags.pop(partition, None)
                self.deleted.pop(partition, None)
                self.output_agents.pop(partition, None)
                self.reread_progress_at.pop(partition, None)
            self.ready = False

    async def on_assigned(self, assigned) -> None:
        async with self.lock:
            kept = {tp.partition for tp in assigned if tp.topic in self._base_of}
            # Entries of partitions that moved to another worker are that worker's now; drop the
            # local copies without sending tombstones to the changelog.
            stale = [key for key in list(self.table.data.keys()) if self.table.partition_for_key(key) not in kept]
            for key in stale:
                self.table.data.pop(key, None)
            for partition in list(self.table.pending):
                if partition not in kept:
                    self.table.pending.pop(partition, None)
                    self.table.aborted.pop(partition, None)
            self.next_offsets = {tp: offset for tp, offset in self.next_offsets.items() if tp in assigned}
            log.info("assigned input partitions %s", sorted(kept) or "none")

    def _assigned_partitions(self) -> set[int]:
        return {tp.partition for tp in self.app.consumer.assignment() if tp.topic in self._base_of}

    # Input ------------------------------------------------------------------------------------

    async def process(self, events: list) -> None:
        """Apply one batch of Faust events and send its outputs; the state is written by the tick."""
        received_at = time.time()
        async with self.lock:
            generation = self.app.consumer_generation_id
            engines = self.engines
            touched: set[int] = set()
            newest_ts = None
            now = time.monotonic()
            for event in events:
                message = event.message
                partition = message.partition
                engine = engines.get(partition)
                if engine is None or message.generation_id != generation:
                    # Fetched before a rebalance, or before this partition's state is restored:
                    # the consumer reads it again from the restored state's offsets.
                    continue
                base = self._base_of[message.topic]
                self.next_offsets[message.tp] = message.offset + 1
                value = message.value
                origin = Origin(message.topic, partition, message.offset, message.key, value)
                decoded, invalid = decode(base, value)
                touched.add(partition)
                rereading = bool(engine.rereading)
                is_new = engine.read(base, message.offset, decoded, origin)
                if rereading and not engine.rereading:
                    log.info("partition %d: input read again up to the stored offsets; %d events buffered", partition, engine.buffered)
                if not is_new:
                    # Read again after a restore: its buffered events went back into the buffer.
                    self.reread_progress_at[partition] = now
                    continue
                for bad in invalid:
                    reason = "invalid_json" if bad.error.startswith("message is not") else "invalid_event"
                    engine.reject(bad.error, reason, Origin(message.topic, partition, message.offset, message.key, bad.value))
                if decoded:
                    newest_ts = decoded[-1].ts

            for partition in touched:
                self.last_input_at[partition] = now
            self.metrics.received(len(events))
            if newest_ts is not None:
                self.metrics.event_lag_seconds.labels(topic=CALL_EVENTS).observe(max(0.0, received_at - newest_ts))
            await self._send_outputs(touched, received_at, snapshots={})
            if events:
                self.metrics.processing_seconds.labels(topic=CALL_EVENTS).observe((time.time() - received_at) / len(events))

    # Time -------------------------------------------------------------------------------------

    async def tick(self) -> None:
        """Advance every engine to its own newest event time, flush idle ones, send snapshots, write the state."""
        app = self.app
        if app.rebalancing or app.in_recovery or not app.tables.recovery.completed.is_set():
            self.ready = False
            return
        started = time.perf_counter()
        async with self.lock:
            now = time.monotonic()
            snapshots: dict[int, list[dict]] = {}
            partitions = self._assigned_partitions()
            settled = []
            for partition in partitions:
                engine = self.engines.get(partition)
                if engine is None:
                    continue
                if engine.rereading:
                    if now - self.reread_progress_at.get(partition, now) < REREAD_GIVE_UP_S:
                        continue
                    log.warning(
                        "partition %d: the input of %s to read again after the restore did not arrive within %.0f s, "
                        "possibly deleted by retention; continuing without it, so the events it had buffered are lost",
                        partition,
                        sorted(engine.rereading),
                        REREAD_GIVE_UP_S,
                    )
                    engine.end_reread()
                settled.append(partition)
                if engine.max_ts == float("-inf"):
                    continue
                if now - self.last_input_at.get(partition, now) >= self.idle_flush_s:
                    engine.flush()
                else:
                    engine.advance_to(engine.max_ts)
                if engine.applied_until > float("-inf"):
                    snapshots[partition] = engine.snapshots(engine.applied_until, self._snapshot_interval_s)
            await self._send_outputs(settled, None, snapshots)
            # The state written below records every output so far as made: Kafka must have them
            # first, or a crash right after the write would lose them for good.
            await app.producer.flush()
            for partition in settled:
                self._write_state(partition)
            self._export_lag()
            self.ready = True
            self.metrics.ready.set(1)
        self.metrics.tick_duration_seconds.observe(time.perf_counter() - started)

    def _export_lag(self) -> None:
        consumer = self.app.consumer
        for tp in consumer.assignment():
            if tp.topic not in self._base_of:
                continue
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            next_offset = self.next_offsets.get(tp)
            lag = highwater - next_offset if next_offset is not None else highwater
            self.metrics.consumer_lag_messages.labels(topic=tp.topic, partition=str(tp.partition)).set(max(0, lag))

    # Output -----------------------------------------------------------------------------------

    async def _send_outputs(self, partitions: Iterable[int], received_at: float | None, snapshots: dict[int, list[dict]]) -> None:
        producer = self.app.producer
        topics = self.output_topics
        dead_count = 0
        for partition in partitions:
            engine = self.engines.get(partition)
            if engine is None:
                continue
            transitions: list[Transition] = engine.drain_transitions()
            agents = self.output_agents[partition]
            for transition in transitions:
                agents.add(transition.agent_id)
                value = dumps(break_cloudevent(transition, self._source)).encode("utf-8")
                await producer.send(topics[RECOVERY_BREAKS], transition.agent_id.encode("utf-8"), value, None, None, None)
            if received_at is not None and transitions:
                latency_s = time.time() - received_at
                for _ in transitions:
                    self.metrics.decision_latency_seconds.observe(latency_s)
            for dead_letter in engine.drain_dead_letters():
                dead_count += 1
                record = dead_letter_record(dead_letter, time.time())
                key = dead_letter.origin.key if dead_letter.origin is not None else None
                if isinstance(key, str):
                    key = key.encode("utf-8")
                await producer.send(topics[DEAD_LETTERS], key, dumps(record).encode("utf-8"), None, None, None)
            for snapshot in snapshots.get(partition, ()):
                agents.add(snapshot["agent_id"])
                key = snapshot["agent_id"].encode("utf-8")
                await producer.send(topics[AGENT_LOAD], key, dumps(snapshot).encode("utf-8"), None, None, None)
        if dead_count:
            log.warning("%d messages or events sent to dead-letters", dead_count)


    def _write_state(self, partition: int) -> None:
        """Write the entries of engine ``partition`` that changed, ending with its clock (the commit)."""
        table = self.table
        prefix = f"{partition}/"
        agents = self.output_agents[partition]
        agents.update(self.forced_agents.pop(partition, ()))
        changes = self.stores[partition].changes(also_agents=agents)
        agents.clear()
        # Deletions committed by the previous write can now become real tombstones.
        for table_key in self.deleted.pop(partition, ()):
            if table.data.get(table_key, b"").endswith(b"|"):
                del table[table_key]
        if not changes:
            return

        write_tag = self.write_tags[partition]
        write_tag[1] += 1
        tag = f"{write_tag[0]}:{write_tag[1]}|".encode()
        deleted = []
        for key, value in changes.items():
            if key == CLOCK:
                continue
            table_key = (prefix + key).encode("utf-8")
            if value is None:
                deleted.append(table_key)
                table[table_key] = tag
            else:
                table[table_key] = tag + value
        clock = changes.get(CLOCK) or self.stores[partition].written(CLOCK)
        table[(prefix + CLOCK).encode()] = tag + clock
        self.deleted[partition] = deleted


def _add_raw_bridge(
    app: faust.App,
    raw_topics: dict[str, str],
    topic_prefix: str | None,
    config: Config,
    partitions: int,
    runtime: WorkerRuntime,
    batch_max: int,
    batch_within_s: float,
) -> None:
    """Add the agent that converts raw platform topics into ``call-events``."""
    from streams.kafka_cli import team_partition
    from streams.raw_bridge import RawBridge

    bridge = RawBridge(raw_topics, config.runtime.lateness_s)
    source = app.topic(*raw_topics, key_serializer="raw", value_serializer="raw")
    call_events = topic_name(topic_prefix, CALL_EVENTS)
    dead_letters = topic_name(topic_prefix, DEAD_LETTERS)
    default_team = config.runtime.default_team
    idle_flush_s = runtime.idle_flush_s
    last_input_at = [time.monotonic()]

    async def forward(events: list[dict], dead: list[dict]) -> None:
        packs: dict[int, list[bytes]] = {}
        for event in events:
            team_id = event.get("team_id") or default_team
            packs.setdefault(team_partition(team_id, partitions), []).append(dumps(event).encode("utf-8"))
        pending = []
        for partition, items in packs.items():
            pending.append(await app.producer.send(call_events, None, b"[" + b",".join(items) + b"]", partition, None, None))
        for record in dead:
            pending.append(await app.producer.send(dead_letters, None, dumps(record).encode("utf-8"), None, None, None))
        if dead:
            log.warning("%d raw platform messages sent to dead letters", len(dead))
        if pending:
            await asyncio.gather(*pending)

    @app.agent(source, concurrency=1, name="raw-platform")
    async def raw_agent(stream):
        async for events in stream.take_events(batch_max, within=batch_within_s):
            converted: list[dict] = []
            dead: list[dict] = []
            for event in events:
                message = event.message
                canonical, failed = bridge.convert(message.topic, message.partition, message.offset, message.key, message.value)
                converted.extend(canonical)
                dead.extend(failed)
            last_input_at[0] = time.monotonic()
            await forward(converted, dead)

    @app.timer(interval=config.runtime.tick_interval_s, name="raw-platform-flush")
    async def flush_idle_adapters():
        # An adapter keeps each agent's events for the lateness bound. On a quiet stream they would
        # wait for the next document, so they are released after idle_flush_s.
        if time.monotonic() - last_input_at[0] >= idle_flush_s:
            events = bridge.flush()
            if events:
                await forward(events, [])


def create_app(
    broker: str,
    topic_prefix: str | None,
    config: Config,
    partitions: int,
    *,
    http_port: int = 6066,
    data_dir: str | None = None,
    idle_flush_s: float | None = None,
    commit_interval_s: float = 2.8,
    session_timeout_s: float = 10.0,
    batch_max: int = 1000,
    batch_within_s: float = 0.05,
    raw_topics: dict[str, str] | None = None,
) -> tuple[faust.App, WorkerRuntime]:
    """Build the Faust app of ``agentload worker`` and the runtime behind it.

    ``broker`` is ``host:port[,host:port]``; ``partitions`` is the partition count of the input
    topics, which the state table's changelog gets too. ``http_port`` 0 turns the web server
    (``/metrics``, ``/healthz``, ``/readyz``) off. ``idle_flush_s`` defaults to the lateness bound.
    ``raw_topics`` maps raw platform topics to their platform, whose adapter converts them (see
    :mod:`streams.raw_bridge`).
    """
    settings = {
        "broker": [f"kafka://{server.strip()}" for server in broker.split(",") if server.strip()],
        "store": "memory://",
        "topic_partitions": partitions,
        "topic_replication_factor": 1,
        "topic_disable_leader": True,
        "table_standby_replicas": 0,
        "broker_commit_interval": commit_interval_s,
        # A worker that dies without leaving the group keeps its partitions until this runs out.
        "broker_session_timeout": session_timeout_s,
        "broker_heartbeat_interval": max(0.5, session_timeout_s / 5),
        "stream_wait_empty": False,
        "web_enabled": http_port > 0,
        "web_port": http_port if http_port > 0 else 6066,
        "web_bind": "127.0.0.1",
        "web_host": "127.0.0.1",
        "consumer_auto_offset_reset": "earliest",
        "autodiscover": False,
        # Bigger batches keep a batch's changelog writes in few Kafka record batches.
        "producer_max_batch_size": 1_048_576,
        # Up to 4 MiB per partition and fetch, against Faust's 1 MiB: fewer round trips to the
        # broker when the worker catches up (packed input about doubles in rate, see BENCHMARKS.md).
        "consumer_max_fetch_size": 4 * 1_048_576,
    }
    if data_dir:
        settings["datadir"] = data_dir
    app = faust_consumer.WorkerApp(app_id(topic_prefix), **settings)

    table = app.tables.add(
        PartitionKeyedTable(
            app,
            name=STATE_TABLE,
            beacon=app.tables.beacon,
            partitions=partitions,
            key_type=bytes,
            value_type=bytes,
            help="Engine state per input partition: agents, open breaks, teams and bookkeeping",
        )
    )

    metrics = Metrics(registry=CollectorRegistry())
    runtime = WorkerRuntime(
        app,
        config,
        table,
        topic_prefix,
        metrics,
        idle_flush_s if idle_flush_s is not None else config.runtime.lateness_s,
    )
    source = app.topic(*runtime.input_topics, key_serializer="raw", value_serializer="raw")

    @app.agent(source, concurrency=1, name="engine")
    async def engine_agent(stream):
        async for events in stream.take_events(batch_max, within=batch_within_s):
            await runtime.process(events)

    @app.timer(interval=config.runtime.tick_interval_s, name="tick")
    async def tick():
        await runtime.tick()

    if raw_topics:
        _add_raw_bridge(app, raw_topics, topic_prefix, config, partitions, runtime, batch_max, batch_within_s)

    @table.on_recover
    async def on_recovered():
        await runtime.on_recovered()

    @app.on_partitions_revoked.connect
    async def on_revoked(sender, revoked, **kwargs):
        await runtime.on_revoked(revoked)

    @app.on_partitions_assigned.connect
    async def on_assigned(sender, assigned, **kwargs):
        await runtime.on_assigned(assigned)

    @app.page("/metrics")
    async def metrics_page(web, request):
        return web.bytes(generate_latest(metrics.registry), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/healthz")
    async def healthz(web, request):
        return web.text("ok\n")

    @app.page("/readyz")
    async def readyz(web, request):
        if runtime.ready and not app.rebalancing:
            return web.text("ready\n")
        return web.text("not ready: joining the group or restoring state\n", status=503)

    return app, runtime
