"""Restores at any point of any stream give the transitions one engine gives for the same new input.

The streams are a few agents' shifts over call-events and break-actions, delivered out of order
within and beyond the lateness bound, some exactly at the watermark, with repeated event ids (the
same time, or another). At random counts of new messages the engine is stored and a new one is
restored from the table. The new engine reads every topic again from its resume offset, and the
topics interleave in any order that keeps each topic's own order, as a Kafka consumer reads them.
"""

from __future__ import annotations

import itertools
import random
from typing import NamedTuple

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.codec import break_cloudevent
from streams.config import load_config
from streams.engine import Origin
from streams.events import parse_ts, topic_of_document, validate_any
from streams.snapshot_state import EngineStore, TrackedEngine, restore_engine
from tests.helpers import T0, agent_state, break_action, sentiment, ts
from tests.test_engine_properties import timelines
from tests.test_snapshot_state import run_straight

CONFIG = load_config()
LATENESS_S = CONFIG.runtime.lateness_s
DEDUPE_WINDOW_S = CONFIG.runtime.dedupe_window_s
PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def seconds_of(document: dict) -> float:
    return parse_ts(document["ts"]) - T0


def anchor(document: dict, serial: int) -> dict:
    """Return an event of the same agent ``LATENESS_S`` later that changes no load.

    An event delivered right after it sits exactly at the watermark. The agent's own sentiment is
    ignored by design, so the anchor moves event time on and nothing else.
    """
    return sentiment(
        document["agent_id"], "anchor-call", seconds_of(document) + LATENESS_S, 0.0, speaker="agent", event_id=f"anchor-{serial}"
    )


@st.composite
def arrivals(draw) -> list[dict]:
    """A floor's events in the order they reach the topics: late, at the watermark and repeated."""
    events = draw(timelines(max_agents=4, max_calls=8))

    # (arrival time, 0 for on time or 1 for delayed, serial, document): a delayed event arrives
    # after the on-time ones stamped with its arrival time.
    keyed: list[tuple[float, int, int, dict]] = []
    for serial, document in enumerate(events):
        t = seconds_of(document)
        delay = draw(st.sampled_from(["none", "none", "none", "within", "watermark", "beyond"]))
        if delay == "none":
            keyed.append((t, 0, serial, document))
        elif delay == "within":
            keyed.append((t + draw(st.integers(1, int(LATENESS_S) - 1)), 1, serial, document))
        elif delay == "watermark":
            keyed.append((t + LATENESS_S, 0, serial, anchor(document, serial)))
            keyed.append((t + LATENESS_S, 1, serial, document))
        else:
            keyed.append((t + draw(st.integers(int(LATENESS_S) + 1, 400)), 1, serial, document))

    # Repeats: a retry of the same document, or the same id stamped with another time, arriving
    # soon, exactly a lateness bound later, or just as the dedupe window ends.
    for _ in range(draw(st.integers(0, 6))):
        serial = draw(st.integers(0, len(events) - 1))
        original = events[serial]
        copy = dict(original)
        if draw(st.booleans()):
            copy["ts"] = ts(seconds_of(original) + draw(st.sampled_from([-45, -30, -5, 5, 30, 45])))
        arrival = seconds_of(original) + draw(
            st.one_of(
                st.sampled_from([0, 1, 10, LATENESS_S, LATENESS_S + 1, 200]),
                st.integers(int(DEDUPE_WINDOW_S + LATENESS_S), int(DEDUPE_WINDOW_S + LATENESS_S) + 20),
            )
        )
        keyed.append((arrival, 1, len(events) + serial, copy))

    keyed.sort(key=lambda item: item[:3])
    return [document for _, _, _, document in keyed]


class Run(NamedTuple):
    transitions: list[dict]
    restores: int
    reread: int  # messages read again after restores
    arrived: list[dict]  # new messages in the order the engines took them


def run_restoring(config, documents: list[dict], restore_after: list[int], seed: int, reach: int) -> Run:
    """Deliver ``documents`` through per-topic logs, restoring after the given counts of new messages.

    Each step reads the next message of one topic, chosen by ``random.Random(seed)`` among the
    topics whose next message is at most ``reach`` places after the first one due in
    ``documents``. A restore that
    falls while the engine still reads again restores the last stored table once more, as after a
    crash then: nothing was stored since, and the messages taken since come again as new.
    """
    chooser = random.Random(seed)
    logs: dict[str, list[tuple[int, dict]]] = {}
    for index, document in enumerate(documents):
        logs.setdefault(topic_of_document(document), []).append((index, document))
    positions = {topic: 0 for topic in logs}

    table: dict[str, bytes] = {}
    engine = TrackedEngine(config)
    store = EngineStore(engine)
    transitions: list[dict] = []
    arrived: list[dict] = []
    stored_arrived = 0
    restores = 0
    reread = 0
    pending = sorted(set(restore_after))

    while True:
        ready = [topic for topic in logs if positions[topic] < len(logs[topic])]
        if not ready:
            break
        first = min(logs[topic][positions[topic]][0] for topic in ready)
        near = [topic for topic in ready if logs[topic][positions[topic]][0] <= first + reach]
        topic = chooser.choice(near)
        offset = positions[topic]
        positions[topic] = offset + 1
        document = logs[topic][offset][1]
        if engine.read(topic, offset, [validate_any(document)], Origin(topic, 0, offset, None, "")):
            arrived.append(document)
        else:
            reread += 1
        drained = engine.drain_transitions()
        transitions.extend(break_cloudevent(transition, "/test") for transition in drained)

        if not pending or len(arrived) < pending[0]:
            continue
        pending.pop(0)
        if engine.rereading:
            del arrived[stored_arrived:]
        else:
            for key, value in store.changes(also_agents=[t.agent_id for t in drained]).items():
                if value is None:
                    table.pop(key, None)
                else:
                    table[key] = value
            stored_arrived = len(arrived)
        engine = restore_engine(config, table)
        store = EngineStore(engine, table)
        restores += 1
        for name in positions:
            positions[name] = engine.resume_offsets.get(name, 0)

    engine.flush()
    transitions.extend(break_cloudevent(transition, "/test") for transition in engine.drain_transitions())
    return Run(transitions, restores, reread, arrived)


@given(
    documents=arrivals(),
    restore_gaps=st.lists(st.integers(1, 12), min_size=1, max_size=30),
    seed=st.integers(0, 2**32 - 1),
    reach=st.integers(0, 12),
)
@PROPERTY_SETTINGS
def test_restores_match_one_engine(documents, restore_gaps, seed, reach):
    # Some gaps are shorter than a reread, so a restore can fall inside one.
    restore_after = list(itertools.accumulate(restore_gaps))

    run = run_restoring(CONFIG, documents, restore_after, seed, reach)

    assert sorted(map(id, run.arrived)) == sorted(map(id, documents))
    assert run.transitions == run_straight(CONFIG, run.arrived)


def test_restore_keeps_dedupe_forget_cadence():
    # Event time moves in 7 s steps and old ids are dropped at most every 10 s, so the clean-up
    # runs at every other step. A restored engine with its own schedule would drop the request
    # at watermark 901 s instead of 908 s, and the repeat arriving in between would open a
    # second break.
    documents = [
        agent_state("A", "available", 0, event_id="state", team="t1"),
        break_action("A", "request", 0, event_id="request"),
    ]
    for t in range(7, 946, 7):
        documents.append(sentiment("A", "c1", t, 0.0, speaker="agent", event_id=f"tick-{t}"))
        if t == 931:
            documents.append(break_action("A", "request", 0, event_id="request"))

    run = run_restoring(CONFIG, documents, restore_after=[2], seed=0, reach=0)

    assert run.restores == 1
    assert [document["event_id"] for document in run.arrived] == [document["event_id"] for document in documents]
    assert [event["type"] for event in run_straight(CONFIG, run.arrived)] == [
        "io.agentload.break.suggested",
        "io.agentload.break.expired",
    ]
    assert run.transitions == run_straight(CONFIG, run.arrived)
