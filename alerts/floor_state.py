"""The floor view's state, kept from the runtime's outputs alone.

:class:`FloorState` is fed the agent-load snapshots and the break transitions, the same two
outputs that the Faust runtime publishes on ``agent-load`` and ``recovery-breaks``, so it never
reads the engine. It keeps one row per agent, the open breaks, a short feed of recent
transitions, and what changed since the last update, which the web side sends to browsers in
batches instead of one message per change.
"""

from __future__ import annotations

from collections import deque

from alerts.policy import OPEN_STATUSES, TRIGGER_WORDS, Transition
from streams.events import format_ts

# Transitions kept for the alert feed, newest last.
DEFAULT_FEED_SIZE = 200


def transition_record(transition: Transition) -> dict:
    """Return a break transition as the floor view sends it: the CloudEvent's data, flattened."""
    return {
        "event_id": transition.event_id,
        "type": transition.type,
        "time": format_ts(transition.time),
        "break_id": transition.break_id,
        "agent_id": transition.agent_id,
        "team_id": transition.team_id,
        "level": transition.level,
        "load": round(transition.load, 1),
        "recommended_break_s": int(transition.recommended_break_s),
        "offer_expires_at": format_ts(transition.offer_expires_at) if transition.offer_expires_at is not None else None,
        "trigger": transition.trigger,
        "trigger_words": TRIGGER_WORDS.get(transition.trigger, transition.trigger),
        "reasons": transition.reasons,
        "actor": transition.actor,
        "note": transition.note,
    }


class FloorState:
    """Rows per agent, open breaks and recent transitions, with the changes not yet sent.

    Usage::

        state = FloorState()
        runtime.on_snapshot.append(state.on_snapshot)
        runtime.on_transition.append(state.on_transition)
        update = state.take_update(runtime.now)  # every flush: changed rows, new transitions
    """

    def __init__(self, feed_size: int = DEFAULT_FEED_SIZE):
        self.rows: dict[str, dict] = {}
        # break_id -> the break's latest transition record, while the break is open.
        self.open_breaks: dict[str, dict] = {}
        self.feed: deque[dict] = deque(maxlen=feed_size)
        self.seq = 0
        self.ts: str | None = None
        self._changed: dict[str, dict] = {}
        self._new_transitions: list[dict] = []

    def on_snapshot(self, snapshot: dict) -> None:
        """Take one agent-load snapshot."""
        agent_id = snapshot["agent_id"]
        row = self.rows.get(agent_id)
        if row is None:
            row = self.rows[agent_id] = {"agent_id": agent_id, "break_id": None, "break_status": None}
        row["team_id"] = snapshot["team_id"]
        row["level"] = snapshot["level"]
        row["load"] = round(snapshot["load"], 1)
        row["state"] = snapshot["state"]
        row["calls_since_break"] = snapshot["calls_since_break"]
        row["last_recovery_end"] = snapshot["last_recovery_end"]
        self._changed[agent_id] = row

    def on_transition(self, transition: Transition) -> None:
        """Take one break transition: it moves the agent's open break and joins the feed."""
        record = transition_record(transition)
        if transition.type in OPEN_STATUSES:
            self.open_breaks[transition.break_id] = record
        else:
            self.open_breaks.pop(transition.break_id, None)
        self.feed.append(record)
        self._new_transitions.append(record)

        row = self.rows.get(transition.agent_id)
        if row is None:
            # A transition can come before the agent's first snapshot; the snapshot fills the rest.
            row = self.rows[transition.agent_id] = {
                "agent_id": transition.agent_id,
                "team_id": transition.team_id,
                "level": transition.level,
                "load": record["load"],
                "state": None,
                "calls_since_break": None,
                "last_recovery_end": None,
            }
        is_open = transition.type in OPEN_STATUSES
        row["break_id"] = transition.break_id if is_open else None
        row["break_status"] = transition.type if is_open else None
        self._changed[transition.agent_id] = row

    def open_break_of(self, agent_id: str) -> dict | None:
        """Return the open break record of ``agent_id``, or ``None``."""
        row = self.rows.get(agent_id)
        if row is None or row.get("break_id") is None:
            return None
        return self.open_breaks.get(row["break_id"])

    def take_update(self, now: float) -> dict:
        """Return the rows changed and the transitions made since the last update, at floor time ``now``."""
        self.seq += 1
        self.ts = format_ts(now)
        update = {
            "seq": self.seq,
            "ts": self.ts,
            "agents": list(self._changed.values()),
            "transitions": self._new_transitions,
        }
        self._changed = {}
        self._new_transitions = []
        return update

    def full_state(self) -> dict:
        """Return everything the floor view shows, as of the last update."""
        return {
            "seq": self.seq,
            "ts": self.ts,
            "agents": list(self.rows.values()),
            "breaks": list(self.open_breaks.values()),
            "feed": list(self.feed),
        }

    def agent_state(self, agent_id: str) -> dict:
        """Return what the agent view of ``agent_id`` shows: that agent's row, open break and feed only."""
        return {
            "seq": self.seq,
            "ts": self.ts,
            "agent": self.rows.get(agent_id),
            "break": self.open_break_of(agent_id),
            "feed": [record for record in self.feed if record["agent_id"] == agent_id],
        }
