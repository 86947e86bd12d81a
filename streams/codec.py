"""Encoding of agentload's outputs: recovery-break CloudEvents, snapshots and dead letters."""

from __future__ import annotations

import base64
import json

from alerts.policy import Transition
from streams.engine import DeadLetter
from streams.events import format_ts

BREAK_EVENT_TYPE_PREFIX = "io.agentload.break."
RECOVERY_BREAKS_SCHEMA = "urn:agentload:schema:recovery-breaks:1"


def break_cloudevent(transition: Transition, source: str) -> dict:
    """Return ``transition`` as a CloudEvents 1.0 event in structured JSON mode.

    The ``id`` depends only on the break and its transition number, so a retry or a replay of
    the same events sends the same ``id`` and consumers can drop the repeat.
    """
    data = {
        "break_id": transition.break_id,
        "agent_id": transition.agent_id,
        "team_id": transition.team_id,
        "level": transition.level,
        "load": round(transition.load, 2),
        "recommended_break_s": int(transition.recommended_break_s),
        "offer_expires_at": format_ts(transition.offer_expires_at) if transition.offer_expires_at is not None else None,
        "reasons": transition.reasons,
        "reason_code": transition.reason_code,
        "trigger": transition.trigger,
        "actor": transition.actor,
    }
    if transition.note is not None:
        data["note"] = transition.note
    return {
        "specversion": "1.0",
        "id": transition.event_id,
        "source": source,
        "type": BREAK_EVENT_TYPE_PREFIX + transition.type,
        "subject": transition.agent_id,
        "time": format_ts(transition.time),
        "datacontenttype": "application/json",
        "dataschema": RECOVERY_BREAKS_SCHEMA,
        "data": data,
    }


def dead_letter_record(dead_letter: DeadLetter, received_at: float, default_topic: str = "unknown") -> dict:
    """Return the ``dead-letters`` record of ``dead_letter``; ``received_at`` is wall-clock Unix time."""
    origin = dead_letter.origin
    record = {
        "source_topic": origin.topic if origin is not None else default_topic,
        "partition": origin.partition if origin is not None else None,
        "offset": origin.offset if origin is not None else None,
        "key": _text(origin.key)[0] if origin is not None and origin.key is not None else None,
        "error": dead_letter.error,
        "reason": dead_letter.reason,
        "received_at": format_ts(received_at),
    }
    value = origin.value if origin is not None else ""
    text, is_text = _text(value)
    record["value"] = text
    record["value_encoding"] = "utf-8" if is_text else "base64"
    return record


def _text(value: bytes | str) -> tuple[str, bool]:
    """Return (text, True) for UTF-8 input, else (base64 of the bytes, False)."""
    if isinstance(value, str):
        return value, True
    try:
        return bytes(value).decode("utf-8"), True
    except UnicodeDecodeError:
        return base64.b64encode(bytes(value)).decode("ascii"), False


def dumps(document: object) -> str:
    """Serialize compactly and deterministically, as every output of agentload is written."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)
