"""Round trips of the stored engine state: a restored engine continues exactly like the original."""

from __future__ import annotations

import math

from streams.codec import break_cloudevent
from streams.config import load_config
from streams.embedded import EmbeddedRuntime
from streams.engine import Engine, Origin
from streams.events import parse_ts, validate_any
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


def run_with_restores(config, events: list[dict], batch: int) -> tuple[list[dict], int]:
    """Feed ``events`` in batches, storing changes per batch and restoring a new engine after each."""
    table: dict[str, bytes] = {}
    engine = TrackedEngine(config)
    store = EngineStore(engine)
    out: list[dict] = []
    restores = 0
    for start in range(0, len(events), batch):
        for document in events[start : start + batch]:
            engine.submit(validate_any(document), Origin("in", 0, None, None, ""))
        transitions = engine.drain_transitions()
        out.extend(break_cloudevent(transition, "/test") for transition in transitions)
        for key, value in store.changes(also_agents=[t.agent_id for t in transitions]).items():
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value
        engine = restore_engine(config, table)
        store = EngineStore(engine, table)
        restores += 1
    engine.flush()
    out.extend(break_cloudevent(transition, "/test") for transition in engine.drain_transitions())
    return out, restores


def test_restored_engine_gives_same_transitions():
    config = load_config()
    events = shuffled_within_lateness(recorded_floor())
    expected = run_straight(config, events)

    actual, restores = run_with_restores(config, events, batch=97)

    assert restores > 50
    assert len(expected) > 20
    assert {event["type"] for event in expected} >= {
        "io.agentload.break.suggested",
        "io.agentload.break.accepted",
        "io.agentload.break.started",
        "io.agentload.break.completed",
    }
    assert actual == expected


def test_restore_keeps_duplicates_dropped():
    config = load_config()
    events = recorded_floor(agents=6, hours=1.0)
    # Every event twice, the repeat in a later batch than the original.
    doubled = events[:300] + events[250:300] + events[300:]
    expected = run_straight(config, events)

    actual, _ = run_with_restores(config, doubled, batch=40)

    assert actual == expected


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
