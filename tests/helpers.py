"""Small builders of canonical input events, and a one-call way to run the engine over them.

Times are given in seconds after :data:`T0` (Monday 2026-03-02 08:00:00 UTC) and written as
RFC 3339, so a test reads as a timeline. Every builder returns the JSON object a producer would
send; :func:`run_engine` validates each one with the real decoder before it reaches the engine.
"""

from __future__ import annotations

import itertools
import json

from streams.config import Config, load_config
from streams.engine import DeadLetter, Engine, Origin
from streams.events import decode, format_ts, parse_ts

T0 = parse_ts("2026-03-02T08:00:00Z")

_ids = itertools.count(1)


def ts(seconds: float) -> str:
    """Return the RFC 3339 timestamp ``seconds`` after :data:`T0`."""
    return format_ts(T0 + seconds)


def _event(event_type: str, agent: str, ts_s: float, event_id: str | None, **fields) -> dict:
    document = {
        "event_id": event_id or f"e{next(_ids)}",
        "type": event_type,
        "agent_id": agent,
        "ts": ts(ts_s),
    }
    document.update({key: value for key, value in fields.items() if value is not None})
    return document


def agent_state(agent: str, state: str, ts_s: float, *, event_id: str | None = None, team: str | None = None) -> dict:
    return _event("agent_state", agent, ts_s, event_id, state=state, team_id=team)


def call_started(agent: str, call: str, ts_s: float, *, event_id: str | None = None, team: str | None = None) -> dict:
    return _event("call_started", agent, ts_s, event_id, call_id=call, team_id=team)


def call_ended(
    agent: str,
    call: str,
    ts_s: float,
    *,
    disposition: str | None = None,
    event_id: str | None = None,
    team: str | None = None,
) -> dict:
    return _event("call_ended", agent, ts_s, event_id, call_id=call, disposition=disposition, team_id=team)


def hold_started(agent: str, call: str, ts_s: float, *, event_id: str | None = None) -> dict:
    return _event("hold_started", agent, ts_s, event_id, call_id=call)


def hold_ended(agent: str, call: str, ts_s: float, *, event_id: str | None = None) -> dict:
    return _event("hold_ended", agent, ts_s, event_id, call_id=call)


def transfer(agent: str, call: str, ts_s: float, *, event_id: str | None = None) -> dict:
    return _event("transfer", agent, ts_s, event_id, call_id=call)


def sentiment(
    agent: str,
    call: str,
    ts_s: float,
    score: float,
    *,
    speaker: str = "customer",
    window_s: float | None = None,
    event_id: str | None = None,
) -> dict:
    return _event("sentiment", agent, ts_s, event_id, call_id=call, speaker=speaker, score=score, window_s=window_s)


def flag(
    agent: str, call: str, ts_s: float, kind: str = "abuse", *, speaker: str = "customer", event_id: str | None = None
) -> dict:
    return _event("interaction_flag", agent, ts_s, event_id, call_id=call, flag=kind, speaker=speaker)


def break_action(
    agent: str,
    action: str,
    ts_s: float,
    break_id: str | None = None,
    *,
    actor: str = "agent",
    event_id: str | None = None,
) -> dict:
    document = {
        "event_id": event_id or f"a{next(_ids)}",
        "agent_id": agent,
        "ts": ts(ts_s),
        "action": action,
        "actor": actor,
    }
    if break_id is not None:
        document["break_id"] = break_id
    return document


def hostile_call(agent: str, call: str, start_s: float, end_s: float, kind: str = "abuse") -> list[dict]:
    """Return a whole call whose customer is flagged ``kind`` a minute in."""
    return [call_started(agent, call, start_s), flag(agent, call, start_s + 60, kind), call_ended(agent, call, end_s)]


def encode(document: dict | list) -> str:
    return json.dumps(document, separators=(",", ":"))


def feed(engine: Engine, messages, topic: str | None = None) -> None:
    """Decode and submit each message (a dict, a list for a packed message, or raw text) as replay does."""
    for position, message in enumerate(messages):
        text = message if isinstance(message, (str, bytes)) else encode(message)
        origin = Origin(topic or "test", 0, position, None, text)
        events, invalid = decode(topic, text)
        for bad in invalid:
            reason = "invalid_json" if bad.error.startswith("message is not") else "invalid_event"
            engine.reject(bad.error, reason, Origin(topic or "test", 0, position, None, bad.value))
        for event in events:
            engine.submit(event, origin)


def run_engine(messages, config: Config | None = None, engine: Engine | None = None, until_s: float | None = None):
    """Submit ``messages`` to a fresh engine (or ``engine``), flush, and return what came out.

    With ``until_s``, event time then moves on to that many seconds after :data:`T0`, as a
    runtime's ticks would, so timers up to there fire. Returns ``(transitions, dead_letters,
    engine)``; the engine is returned so a test can read its agents' final state.
    """
    engine = engine or Engine(config or load_config())
    feed(engine, messages)
    engine.flush()
    if until_s is not None:
        engine.advance_to(T0 + until_s + engine.config.runtime.lateness_s)
    return engine.drain_transitions(), engine.drain_dead_letters(), engine


def kinds(transitions) -> list[tuple[str, str]]:
    """Return (agent_id, type) of each transition, for compact asserts."""
    return [(transition.agent_id, transition.type) for transition in transitions]


def at(transition) -> float:
    """Return a transition's time in seconds after :data:`T0`."""
    return round(transition.time - T0, 6)


def dead_letter_summary(dead_letters: list[DeadLetter]) -> list[tuple[str, str]]:
    return [(dead_letter.reason, dead_letter.error) for dead_letter in dead_letters]
