"""Round trips of the stored engine state: a restored engine continues exactly like the original."""

from __future__ import annotations

import math
from typing import NamedTuple

from streams.codec import break_cloudevent
from streams.config import load_config
from streams.embedded import EmbeddedRuntime
from streams.engine import Engine, Origin
from streams.events import parse_ts, topic_of_document, validate_any
from streams.simulator import FloorSimulator, SimulatorSettings
from streams.snapshot_state import (
    SEEN_CHUNK,
    EngineStore,
    TrackedEngine,
    agent_from_dict,
    agent_to_dict,
    engine_entries,
    restore_engine,
)

START = parse_ts("2026-03-02T08:00:00Z")


def recorded_floor(agents: int = 24, hours: float = 4.0) -> list[dict]:
    """Record the events of a simulated floor whose agents answer the offers they get."""
    config = load_config()
    simulator = FloorSimulator(SimulatorSettings(agents=agents, team_size=6, seed=11), START)
    runtime = EmbeddedRuntime(Engine(config), simulator, START)
    recorded: list[dict] = []
    original_events_until = simulator.events_until

    def events_until(t: float) -> list[dict]:
        events = original_events_until(t)
        recorded.extend({key: value for key, value in event.items() if key != "_t"} for event in events)
        return events

    simulator.events_until = events_until
    t = START
    while t < START + hours * 3600.0:
        t += 5.0
        runtime.step(t)
    return recorded


def shuffled_within_lateness(events: list[dict]) -> list[dict]:
    """Swap neighbours so that the stream is out of order, within the lateness bound."""
    out = list(events)
    for index in range(0, len(out) - 1, 7):
        out[index], out[index + 1] = out[index + 1], out[index]
    return out


def run_straight(config, events: list[dict]) -> list[dict]:
    engine = Engine(config)
    for document in events:
        engine.submit(validate_any(document), Origin("in", 0, None, None, ""))
    engine.flush()
    return [break_cloudevent(transition, "/test") for transition in engine.drain_transitions()]


def as_log(events: list[dict]) -> list[tuple[str, int, dict]]:
    """Put ``events`` into per-topic logs as a runtime reads them: (topic, offset, event) in arrival order."""
    offsets: dict[str, int] = {}
    log = []
    for document in events:
        topic = topic_of_document(document)
        offset = offsets.get(topic, 0)
        offsets[topic] = offset + 1
        log.append((topic, offset, document))
    return log


class Restored(NamedTuple):
    transitions: list[dict]
    restores: int
    moved: int  # new messages that came before messages of other topics read again
    arrived: list[dict]  # new messages in the order the engines got them


def run_with_restores(config, events: list[dict], batch: int, new_first: bool = False) -> Restored:
    """Read ``events`` as logs in batches; after each, store the changes and restore a new engine.

    The new engine reads each topic again from the offset its state records, as a worker seeks its
    input after a restart. A batch is the messages read again plus ``batch`` new ones. With
    ``new_first`` a new message of another topic jumps ahead of the ones read again, as it may in
    Kafka.
    """
    log = as_log(events)
    table: dict[str, bytes] = {}
    engine = TrackedEngine(config)
    store = EngineStore(engine)
    out: list[dict] = []
    restores = 0
    moved = 0
    arrived: list[dict] = []
    resume: dict[str, int] = {}
    cursor = 0
    while True:
        indexes = [index for index in range(cursor, len(log)) if log[index][1] >= resume.get(log[index][0], 0)]
        if not indexes:
            break
        # A batch is the messages read again plus ``batch`` new ones, so that every round moves on.
        stored = engine.input_offsets
        chunk = []
        new = []
        for index in indexes:
            if log[index][1] >= stored.get(log[index][0], 0):
                if len(new) == batch:
                    break
                new.append(index)
            chunk.append(index)
        if new_first:
            # Kafka keeps the order within a topic only: a new message may come before the
            # messages of other topics read again, not before earlier ones of its own topic.
            for index in new:
                topic = log[index][0]
                if all(log[other][0] != topic for other in chunk[: chunk.index(index)]):
                    if any(log[other][1] < stored.get(log[other][0], 0) for other in chunk[: chunk.index(index)]):
                        chunk.remove(index)
                        chunk.insert(0, index)
                        moved += 1
                    break
        for index in chunk:
            topic, offset, document = log[index]
            if engine.read(topic, offset, [validate_any(document)], Origin(topic, 0, offset, None, "")):
                arrived.append(document)
        cursor = max(chunk) + 1
        transitions = engine.drain_transitions()
        out.extend(break_cloudevent(transition, "/test") for transition in transitions)
        if not new:
            break
        if engine.rereading:
            continue
        for key, value in store.changes(also_agents=[t.agent_id for t in transitions]).items():
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value
        engine = restore_engine(config, table)
        store = EngineStore(engine, table)
        restores += 1
        resume = engine.resume_offsets
        starts = [index for index, (topic, offset, _) in enumerate(log) if offset == resume.get(topic)]
        cursor = min(starts, default=cursor)
    engine.flush()
    out.extend(break_cloudevent(transition, "/test") for transition in engine.drain_transitions())
    return Restored(out, restores, moved, arrived)


def test_restored_engine_gives_same_transitions():
    config = load_config()
    events = shuffled_within_lateness(recorded_floor())
    expected = run_straight(config, events)

    run = run_with_restores(config, events, batch=97)

    assert run.restores > 50
    assert len(expected) > 20
    assert {event["type"] for event in expected} >= {
        "io.agentload.break.suggested",
        "io.agentload.break.accepted",
        "io.agentload.break.started",
        "io.agentload.break.completed",
    }
    assert run.transitions == expected


def test_restore_waits_for_every_topic_before_new_input():
    config = load_config()
    events = shuffled_within_lateness(recorded_floor(agents=12, hours=3.0))

    run = run_with_restores(config, events, batch=61, new_first=True)

    assert run.restores > 50
    assert run.moved >= 5
    # The same as one engine that got the new messages in the order they came in this run.
    assert run.transitions == run_straight(config, run.arrived)


def test_restore_keeps_duplicates_dropped():
    config = load_config()
    events = recorded_floor(agents=6, hours=1.0)
    # Every event twice, the repeat in a later batch than the original.
    doubled = events[:300] + events[250:300] + events[300:]
    expected = run_straight(config, events)

    run = run_with_restores(config, doubled, batch=40)

    assert run.transitions == expected


def test_dedupe_chunks_follow_arrival_order():
    config = load_config()
    events = recorded_floor(agents=12, hours=3.0)
    assert len(events) > 3 * SEEN_CHUNK
    engine = TrackedEngine(config)
    for document in events:
        engine.submit(validate_any(document))

    restored = restore_engine(config, engine_entries(engine))

    assert list(restored._seen_order) == list(engine._seen_order)
    assert restored._seen == engine._seen
    assert restored.seen_appended == engine.seen_appended


def test_dedupe_ids_written_in_steps_all_come_back():
    config = load_config()
    events = recorded_floor(agents=12, hours=3.0)
    engine = TrackedEngine(config)
    store = EngineStore(engine)
    table: dict[str, bytes] = {}
    for index, document in enumerate(events):
        engine.submit(validate_any(document))
        # Writes fall inside chunks, so a chunk is written part-full before it fills.
        if index % 100 == 99 or index == len(events) - 1:
            for key, value in store.changes().items():
                if value is None:
                    table.pop(key, None)
                else:
                    table[key] = value

    restored = restore_engine(config, table)

    assert restored._seen == engine._seen
    assert list(restored._seen_order) == list(engine._seen_order)


def test_agent_round_trip_keeps_every_field():
    config = load_config()
    engine = TrackedEngine(config)
    for document in recorded_floor(agents=6, hours=2.0):
        engine.submit(validate_any(document))
    engine.flush()

    for agent in engine.agents.values():
        restored = agent_from_dict(agent_to_dict(agent), config)
        assert agent_to_dict(restored) == agent_to_dict(agent)
        assert restored.params is config.params(agent.team_id)


def test_empty_engine_round_trip():
    config = load_config()

    restored = restore_engine(config, engine_entries(TrackedEngine(config)))

    assert restored.max_ts == -math.inf
    assert restored.agents == {}
