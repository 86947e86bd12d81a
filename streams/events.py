"""Decoding and validation of agentload's input contracts.

Three topics feed the engine: ``call-events``, ``break-actions`` and ``audio-features``. Each
message is UTF-8 JSON holding one event object, or a JSON array of events that agentload's own
producers pack together. Decoding never raises: every element either becomes an :class:`Event`
or an :class:`InvalidInput` whose ``error`` states what was wrong and how to fix it.
Unknown fields are kept in ``Event.fields`` and otherwise ignored.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone

CALL_EVENTS = "call-events"
BREAK_ACTIONS = "break-actions"
AUDIO_FEATURES = "audio-features"

AGENT_STATES = ("available", "on_call", "acw", "break", "off_queue", "offline")
DISPOSITIONS = ("resolved", "unresolved", "escalated", "transferred", "abandoned")
SPEAKERS = ("customer", "agent")
FLAGS = ("abuse", "threat", "escalation_request", "supervisor_request")
DIRECTIONS = ("inbound", "outbound")
BREAK_ACTION_NAMES = ("request", "accept", "decline", "start", "complete", "cancel")
ACTORS = ("agent", "supervisor", "wfm", "acd")
CHANNELS = ("customer", "agent")
AUDIO_FEATURE_NAMES = (
    "rms_dbfs",
    "pitch_hz",
    "pitch_sd_st",
    "voiced_ratio",
    "speech_ratio",
    "overlap_ratio",
    "onset_rate_hz",
    "clipped_ratio",
)

# Call-event types that need a call_id, and the enumerated fields of each type as
# (field, allowed values, required).
_CALL_ID_REQUIRED = frozenset(
    ("call_started", "call_ended", "hold_started", "hold_ended", "transfer", "sentiment", "interaction_flag")
)
_ENUM_FIELDS: dict[str, tuple[tuple[str, tuple[str, ...], bool], ...]] = {
    "agent_state": (("state", AGENT_STATES, True),),
    "call_started": (("direction", DIRECTIONS, False),),
    "call_ended": (("disposition", DISPOSITIONS, False),),
    "hold_started": (),
    "hold_ended": (),
    "transfer": (),
    "sentiment": (("speaker", SPEAKERS, True),),
    "interaction_flag": (("flag", FLAGS, True), ("speaker", SPEAKERS, True)),
}
CALL_EVENT_TYPES = tuple(_ENUM_FIELDS)

# Sort rank of each type among events with the same timestamp, whatever order they arrive in: a
# call that ends at the same second the next one starts is closed first, and a call is open
# before the holds, flags and sentiment stamped with its first second.
TYPE_RANK = {
    "call_ended": 0,
    "hold_ended": 1,
    "agent_state": 2,
    "break_action": 3,
    "call_started": 4,
    "hold_started": 5,
    "transfer": 6,
    "sentiment": 7,
    "interaction_flag": 8,
    "audio_features": 9,
}


_RFC3339 = re.compile(
    r"(?P<local>\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?)(?P<offset>[Zz]|[+-]\d{2}:\d{2})?"
)

# Event times agentload can represent and format: the Unix epoch up to the end of 9998 UTC.
_MIN_TS = 0.0
_MAX_TS = datetime(9999, 1, 1, tzinfo=timezone.utc).timestamp() - 1.0
_OFFSET_AT_END = re.compile(r"(?:[Zz]|[+-]\d{2}:?\d{2})$")


class InvalidEventError(ValueError):
    """An input event that cannot be used. The message states what to change."""


@dataclass(slots=True)
class Event:
    """One validated input event.

    ``ts`` is event time in seconds since the Unix epoch (UTC). ``type`` is the call-event type,
    ``"break_action"`` or ``"audio_features"``. ``fields`` is the decoded JSON object, unknown
    fields included, so that type-specific values (``state``, ``score``, ``action`` …) are read
    from it.
    """

    event_id: str
    type: str
    agent_id: str
    ts: float
    team_id: str | None
    call_id: str | None
    fields: dict


@dataclass(slots=True)
class InvalidInput:
    """One message, or one element of a packed message, that failed validation."""

    error: str
    value: str | bytes


def parse_ts(value: object, field: str = "ts") -> float:
    """Parse an RFC 3339 timestamp with an offset into seconds since the Unix epoch."""
    if not isinstance(value, str):
        raise InvalidEventError(
            f"{field} must be an RFC 3339 string such as 2026-03-02T09:15:00Z, not {value!r}"
        )
    # Python's fromisoformat also takes forms RFC 3339 does not (20260302T0915Z), so the shape is
    # checked first.
    shape = _RFC3339.fullmatch(value)
    if shape is None or shape.group("offset") is None:
        if _OFFSET_AT_END.search(value) is None and value[:10].count("-") == 2 and value[:4].isdigit():
            example = "2026-03-02T09:15:00Z"
            if shape is not None:
                example = shape.group("local").replace(" ", "T") + "Z"
            raise InvalidEventError(f"{field} {value!r} has no UTC offset; send RFC 3339 with Z or +hh:mm, e.g. {example}")
        raise InvalidEventError(
            f"{field} {value!r} is not an RFC 3339 timestamp; send e.g. 2026-03-02T09:15:04.120Z"
        )
    try:
        parsed = datetime.fromisoformat(value.upper())
        seconds = parsed.timestamp()
    except ValueError:
        raise InvalidEventError(
            f"{field} {value!r} is not a valid date and time; send e.g. 2026-03-02T09:15:04.120Z"
        ) from None
    if not _MIN_TS <= seconds <= _MAX_TS:
        raise InvalidEventError(f"{field} {value!r} is outside the years 1970 to 9998 in UTC; check the sender's clock")
    return seconds


def format_ts(seconds: float) -> str:
    """Format seconds since the Unix epoch as RFC 3339 in UTC with milliseconds."""
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def decode(topic: str | None, value: bytes | str) -> tuple[list[Event], list[InvalidInput]]:
    """Decode one message of ``topic`` into its valid events and its invalid elements.

    A message is a JSON object or a JSON array of objects. Elements are validated one by one, so a
    packed message with one bad element still yields all the others. With ``topic`` None, as in a
    replay file that mixes all inputs, each element's contract follows from its fields: a call-event
    ``type`` marks a call event, then ``action`` a break action and ``channel`` an audio-features
    message; anything else is checked as a call event.
    """
    if topic is None:
        validate = validate_any
    else:
        validate = _VALIDATORS.get(topic)
        if validate is None:
            raise ValueError(f"no decoder for topic {topic!r}; expected one of {', '.join(_VALIDATORS)}")

    try:
        text = value.decode("utf-8") if isinstance(value, (bytes, bytearray)) else value
    except UnicodeDecodeError as exc:
        return [], [InvalidInput(f"message is not UTF-8 text ({exc}); send UTF-8 encoded JSON", value)]
    try:
        document = json.loads(text)
    except ValueError as exc:
        return [], [
            InvalidInput(
                f"message is not valid JSON ({exc}); send one JSON object, or a JSON array of objects",
                value,
            )
        ]

    if isinstance(document, list):
        if not document:
            return [], [InvalidInput("message is an empty JSON array; send one event object or an array of them", value)]
        elements = document
        packed = True
    else:
        elements = [document]
        packed = False

    events: list[Event] = []
    invalid: list[InvalidInput] = []
    for index, element in enumerate(elements):
        try:
            events.append(validate(element))
        except InvalidEventError as exc:
            where = f"element {index} of the packed message: " if packed else ""
            original = json.dumps(element, separators=(",", ":")) if packed else value
            invalid.append(InvalidInput(where + str(exc), original))
    return events, invalid


def _describe(document: dict) -> str:
    event_id = document.get("event_id")
    return f"event {event_id!r}" if isinstance(event_id, str) else "event"


def _require_str(document: dict, field: str, what: str) -> str:
    value = document.get(field)
    if value is None:
        raise InvalidEventError(f"{_describe(document)} is missing {field!r}; {what}")
    if not isinstance(value, str) or not value:
        raise InvalidEventError(f"{_describe(document)}: {field} must be a non-empty string, not {value!r}")
    return value


def _optional_str(document: dict, field: str) -> str | None:
    value = document.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidEventError(f"{_describe(document)}: {field} must be a non-empty string, not {value!r}")
    return value


def _check_enum(document: dict, field: str, allowed: tuple[str, ...], required: bool) -> None:
    value = document.get(field)
    if value is None:
        if required:
            raise InvalidEventError(
                f"{_describe(document)} of type {document['type']!r} is missing {field!r}; "
                f"use one of {', '.join(allowed)}"
            )
        return
    if value not in allowed:
        raise InvalidEventError(
            f"{_describe(document)}: {field} {value!r} is not valid; use one of {', '.join(allowed)}"
        )


def _finite_number(document: dict, field: str, low: float, high: float, required: bool) -> None:
    value = document.get(field)
    if value is None:
        if required:
            raise InvalidEventError(
                f"{_describe(document)} is missing {field!r}; send a number from {low:g} to {high:g}"
            )
        return
    if not _is_finite_number(value):
        raise InvalidEventError(f"{_describe(document)}: {field} must be a finite number, not {_short(value)}")
    if not low <= value <= high:
        raise InvalidEventError(
            f"{_describe(document)}: {field} {value!r} is out of range; send a number from {low:g} to {high:g}"
        )


def _is_finite_number(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        # An integer too large for a float, such as 400 nines.
        return False


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _common(document: object, kind: str) -> tuple[str, str, float, str | None]:
    if not isinstance(document, dict):
        raise InvalidEventError(f"a {kind} must be a JSON object, not {type(document).__name__}")
    needs = "every event needs event_id, agent_id and ts"
    event_id = _require_str(document, "event_id", needs)
    agent_id = _require_str(document, "agent_id", needs)
    if "ts" not in document:
        raise InvalidEventError(f"{_describe(document)} is missing 'ts'; {needs}")
    ts = parse_ts(document["ts"])
    team_id = _optional_str(document, "team_id")
    return event_id, agent_id, ts, team_id


def validate_call_event(document: object) -> Event:
    """Validate one decoded ``call-events`` object and return it as an :class:`Event`."""
    event_id, agent_id, ts, team_id = _common(document, "call event")

    event_type = document.get("type")
    enums = _ENUM_FIELDS.get(event_type) if isinstance(event_type, str) else None
    if enums is None:
        if event_type is None:
            raise InvalidEventError(
                f"{_describe(document)} is missing 'type'; use one of {', '.join(CALL_EVENT_TYPES)}"
            )
        raise InvalidEventError(
            f"{_describe(document)}: type {event_type!r} is not a call-event type; "
            f"use one of {', '.join(CALL_EVENT_TYPES)}"
        )

    if event_type in _CALL_ID_REQUIRED:
        call_id = _require_str(document, "call_id", f"a {event_type} event names its call")
    else:
        call_id = _optional_str(document, "call_id")
    for field, allowed, required in enums:
        _check_enum(document, field, allowed, required)
    if event_type == "sentiment":
        _finite_number(document, "score", -1.0, 1.0, required=True)
        _finite_number(document, "window_s", 0.0, 3600.0, required=False)

    return Event(event_id, event_type, agent_id, ts, team_id, call_id, document)


def validate_break_action(document: object) -> Event:
    """Validate one decoded ``break-actions`` object and return it as an :class:`Event`."""
    event_id, agent_id, ts, team_id = _common(document, "break action")
    _check_enum_named(document, "action", BREAK_ACTION_NAMES)
    _check_enum_named(document, "actor", ACTORS)
    break_id = _optional_str(document, "break_id")
    if break_id is None and document["action"] != "request":
        raise InvalidEventError(
            f"{_describe(document)}: action {document['action']!r} needs the break_id of the break it "
            "acts on; only 'request' may leave it out"
        )
    note = document.get("note")
    if note is not None and not isinstance(note, str):
        raise InvalidEventError(f"{_describe(document)}: note must be a string, not {note!r}")
    return Event(event_id, "break_action", agent_id, ts, team_id, None, document)


def validate_audio_features(document: object) -> Event:
    """Validate one decoded ``audio-features`` object and return it as an :class:`Event`."""
    event_id, agent_id, ts, team_id = _common(document, "audio-features message")
    call_id = _require_str(document, "call_id", "audio features belong to a call")
    _check_enum_named(document, "channel", CHANNELS)
    _finite_number(document, "window_s", 0.001, 3600.0, required=True)
    for name in AUDIO_FEATURE_NAMES:
        value = document.get(name)
        if value is not None and not _is_finite_number(value):
            raise InvalidEventError(
                f"{_describe(document)}: {name} must be a finite number or null, not {value!r}; "
                "send null for a feature that is undefined in the window"
            )
    return Event(event_id, "audio_features", agent_id, ts, team_id, call_id, document)


def topic_of_document(document: object) -> str:
    """Return the input topic of one object of a mixed stream, by the contract its fields belong to."""
    if isinstance(document, dict) and document.get("type") not in _ENUM_FIELDS:
        if "action" in document:
            return BREAK_ACTIONS
        if "channel" in document:
            return AUDIO_FEATURES
    return CALL_EVENTS


def validate_any(document: object) -> Event:
    """Validate one object of a mixed stream by the contract its fields belong to."""
    return _VALIDATORS[topic_of_document(document)](document)


def topic_of_type(event_type: str) -> str:
    """Return the input topic that events of ``event_type`` arrive on."""
    if event_type == "break_action":
        return BREAK_ACTIONS
    if event_type == "audio_features":
        return AUDIO_FEATURES
    return CALL_EVENTS


def _check_enum_named(document: dict, field: str, allowed: tuple[str, ...]) -> None:
    value = document.get(field)
    if value is None:
        raise InvalidEventError(f"{_describe(document)} is missing {field!r}; use one of {', '.join(allowed)}")
    if value not in allowed:
        raise InvalidEventError(
            f"{_describe(document)}: {field} {value!r} is not valid; use one of {', '.join(allowed)}"
        )


_VALIDATORS = {
    CALL_EVENTS: validate_call_event,
    BREAK_ACTIONS: validate_break_action,
    AUDIO_FEATURES: validate_audio_features,
}
