"""What every platform adapter shares: event ids, timestamps, status maps and the reorder buffer.

An adapter turns one native platform document into canonical ``call-events`` objects. It keeps
per-agent state because platforms send snapshots or deltas whose meaning depends on what came
before. Agent events wait in a small reorder buffer ordered by event time, so that events that
arrive out of order by less than ``lateness_s`` are applied in timestamp order and give exactly
the events an in-order stream gives.
"""

from __future__ import annotations

import heapq
import json
import math
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

from streams.events import (
    AGENT_STATES,
    FLAGS,
    SPEAKERS,
    InvalidEventError,
    format_ts,
    parse_ts,
    validate_call_event,
)

DEFAULT_LATENESS_S = 30.0

# How many native event ids per agent are remembered to recognise a repeated delivery after the
# original was applied. Platforms redeliver within seconds to minutes, far fewer events than this.
_REMEMBERED_IDS_PER_AGENT = 256

DeadLetter = tuple[str, object]
Result = tuple[list[dict], list[DeadLetter]]


class NativeEventError(ValueError):
    """A native document that cannot be converted; the message says what to change."""


@dataclass(frozen=True, slots=True)
class FlagRule:
    """The ``interaction_flag`` that a matched platform category or rule stands for."""

    flag: str
    speaker: str = "customer"

    def __post_init__(self) -> None:
        if self.flag not in FLAGS:
            raise ValueError(f"flag {self.flag!r} is not valid; use one of {', '.join(FLAGS)}")
        if self.speaker not in SPEAKERS:
            raise ValueError(f"speaker {self.speaker!r} is not valid; use one of {', '.join(SPEAKERS)}")


def parse_flag_rule(text: str) -> tuple[str, FlagRule]:
    """Parse ``NAME=FLAG`` or ``NAME=FLAG:SPEAKER`` as given on the command line."""
    name, sep, value = text.rpartition("=")
    if not sep or not name or not value:
        raise ValueError(f"{text!r} is not NAME=FLAG[:SPEAKER]; e.g. AbusiveLanguage=abuse:customer")
    flag, _, speaker = value.partition(":")
    return name, FlagRule(flag, speaker or "customer")


def check_status_states(table: Mapping[str, str | None]) -> dict[str, str | None]:
    """Return a status table keyed by lower-case status name, checking every state it names."""
    checked: dict[str, str | None] = {}
    for name, state in table.items():
        if state is not None and state not in AGENT_STATES:
            raise ValueError(
                f"status {name!r} maps to {state!r}, which is not an agent state; "
                f"use one of {', '.join(AGENT_STATES)}"
            )
        checked[name.strip().lower()] = state
    return checked


def state_for_status(table: Mapping[str, str | None], name: str) -> str | None:
    """Map a platform status name to an agent state.

    A name missing from the table is a custom status (training, coaching, a project), so it maps to
    ``off_queue`` and keeps its name as the reason. ``None`` in the table means the status says
    nothing of its own and the agent's contacts decide.
    """
    key = name.strip().lower()
    if key in table:
        return table[key]
    return "off_queue"


def make_event_id(source: str, *parts: object) -> str:
    """Build a deterministic canonical event id from the platform name and what identifies it."""
    return ":".join([source, *(str(part) for part in parts)])


def ts_from_epoch_ms(value: object, field_name: str) -> float:
    """Read an epoch-milliseconds integer into seconds since the epoch."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise NativeEventError(f"{field_name} must be epoch milliseconds as a number, not {value!r}")
    return value / 1000.0


def read_ts(value: object, field_name: str) -> float:
    """Read an RFC 3339 native timestamp into seconds since the epoch."""
    try:
        return parse_ts(value, field_name)
    except InvalidEventError as exc:
        raise NativeEventError(str(exc)) from None


def require_str(document: Mapping, key: str, what: str) -> str:
    """Return a non-empty string field or raise an error naming the field and the document kind."""
    value = document.get(key)
    if not isinstance(value, str) or not value:
        shown = "missing" if value is None else f"{value!r}, not a non-empty string"
        raise NativeEventError(f"{what}: {key} is {shown}")
    return value


def arn_resource_id(arn: object, resource: str, what: str) -> str:
    """Return the last segment of an ARN that names ``resource`` (``…/agent/<id>`` gives ``<id>``)."""
    if not isinstance(arn, str) or f"/{resource}/" not in arn:
        raise NativeEventError(f"{what}: {arn!r} is not an ARN with '/{resource}/' in it")
    return arn.rsplit("/", 1)[1]


def received_at() -> str:
    """Return the current wall-clock time as RFC 3339, for dead letters only."""
    return format_ts(datetime.now(tz=timezone.utc).timestamp())


@dataclass(slots=True)
class AgentMemory:
    """What the reorder buffer remembers per agent: the last applied event time and ids."""

    last_ts: float = -math.inf
    applied_ids: OrderedDict = field(default_factory=OrderedDict)

    def remember(self, native_id: str) -> None:
        self.applied_ids[native_id] = None
        if len(self.applied_ids) > _REMEMBERED_IDS_PER_AGENT:
            self.applied_ids.popitem(last=False)


class Adapter:
    """Base of the platform adapters: the reorder buffer, counters and output checks.

    Subclasses implement :meth:`_convert_document`, which returns canonical events at once or
    calls :meth:`_submit` to queue an agent event for ordered application. Call :meth:`flush` at
    the end of the input to apply what is still queued.

    ``ignored`` counts documents deliberately left unconverted, by reason, so a caller can report
    them.
    """

    source = "unknown"

    def __init__(self, *, lateness_s: float = DEFAULT_LATENESS_S) -> None:
        if not math.isfinite(lateness_s) or lateness_s < 0:
            raise ValueError(f"lateness_s must be a finite number of seconds >= 0, not {lateness_s!r}")
        self.lateness_s = lateness_s
        self.ignored: Counter[str] = Counter()
        self._memory: dict[str, AgentMemory] = {}
        self._queue: list[tuple[float, int, str, str, Callable[[], list[dict]], object]] = []
        self._queued_ids: set[tuple[str, str]] = set()
        self._sequence = 0
        self._max_ts = -math.inf

    def convert(self, document: object) -> Result:
        """Convert one native document into canonical events and (error, original) dead letters."""
        try:
            events, dead = self._convert_document(document)
        except NativeEventError as exc:
            return [], [(f"{self.source}: {exc}", document)]
        return self._checked(events, dead, document)

    def flush(self) -> Result:
        """Apply every queued agent event, whatever its age; call at the end of the input."""
        return self._release(math.inf)

    def _convert_document(self, document: object) -> Result:
        raise NotImplementedError

    def _ignore(self, reason: str) -> Result:
        self.ignored[reason] += 1
        return [], []

    def _submit(
        self,
        agent_id: str,
        ts: float,
        native_id: str,
        original: object,
        apply: Callable[[], list[dict]],
    ) -> Result:
        """Queue one agent event for application in event-time order, then release what is due."""
        memory = self._memory.setdefault(agent_id, AgentMemory())
        if native_id in memory.applied_ids or (agent_id, native_id) in self._queued_ids:
            self.ignored["repeated delivery of an event already received"] += 1
            return [], []
        if ts < memory.last_ts:
            error = (
                f"{self.source}: event {native_id!r} for agent {agent_id!r} at {format_ts(ts)} is older "
                f"than the last applied event for that agent at {format_ts(memory.last_ts)}, by more than "
                f"the lateness bound of {self.lateness_s:g} s; it was not applied so that it cannot undo "
                "newer state. Raise --lateness-s if the platform delivers this late."
            )
            return [], [(error, original)]

        heapq.heappush(self._queue, (ts, self._sequence, agent_id, native_id, apply, original))
        self._queued_ids.add((agent_id, native_id))
        self._sequence += 1
        self._max_ts = max(self._max_ts, ts)
        return self._release(self._max_ts - self.lateness_s)

    def _release(self, watermark: float) -> Result:
        events: list[dict] = []
        dead: list[DeadLetter] = []
        while self._queue and self._queue[0][0] <= watermark:
            ts, _, agent_id, native_id, apply, original = heapq.heappop(self._queue)
            self._queued_ids.discard((agent_id, native_id))
            memory = self._memory[agent_id]
            try:
                produced = apply()
            except NativeEventError as exc:
                dead.append((f"{self.source}: {exc}", original))
                continue
            memory.last_ts = max(memory.last_ts, ts)
            memory.remember(native_id)
            checked, rejected = self._checked(produced, [], original)
            events.extend(checked)
            dead.extend(rejected)
        return events, dead

    def _checked(self, events: list[dict], dead: list[DeadLetter], original: object) -> Result:
        # The contract check runs here so that no adapter bug can publish an invalid call event.
        valid: list[dict] = []
        for event in events:
            try:
                validate_call_event(event)
            except InvalidEventError as exc:
                dead.append((f"{self.source}: the adapter derived an invalid call event ({exc})", original))
                continue
            valid.append(event)
        return valid, dead

    def _event(
        self,
        event_type: str,
        event_id: str,
        agent_id: str,
        ts: float,
        *,
        team_id: str | None = None,
        call_id: str | None = None,
        **fields: object,
    ) -> dict:
        """Build one canonical event, leaving out optional fields that are None."""
        event: dict = {"event_id": event_id, "type": event_type, "agent_id": agent_id, "ts": format_ts(ts)}
        if team_id is not None:
            event["team_id"] = team_id
        if call_id is not None:
            event["call_id"] = call_id
        event["source"] = self.source
        for name, value in fields.items():
            if value is not None:
                event[name] = value
        return event


def parse_json_attributes(value: object, what: str) -> dict:
    """Parse a JSON-encoded attribute string (Twilio sends attributes this way) into a dict."""
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        raise NativeEventError(f"{what} must be a JSON object encoded as a string, not {value!r}")
    try:
        parsed = json.loads(value)
    except ValueError:
        raise NativeEventError(f"{what} {value!r} is not valid JSON; send a JSON object as a string") from None
    if not isinstance(parsed, dict):
        raise NativeEventError(f"{what} {value!r} is not a JSON object")
    return parsed
