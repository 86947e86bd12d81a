"""Genesys Cloud: conversation detail events and presence audits, delivered through EventBridge.

The Genesys Cloud EventBridge integration wraps each notification in an EventBridge envelope whose
``detail`` holds ``topicName`` and ``eventBody``. The agent's side of a conversation arrives on
``v2.detail.events.conversation.{id}.user.start`` / ``.user.end`` / ``.acw``; presence changes
arrive as audits on ``v2.audits.entitytype.UserPresence.entityid.{userId}``. Customer and ACD
topics name no agent and are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from streams.adapters.base import (
    DEFAULT_LATENESS_S,
    Adapter,
    NativeEventError,
    Result,
    check_status_states,
    make_event_id,
    read_ts,
    require_str,
    state_for_status,
    ts_from_epoch_ms,
)

SOURCE = "genesys"

# Genesys system presences. "Available" means at the desk but not taking queue calls; only
# "On Queue" receives routed calls.
DEFAULT_STATUS_STATES: dict[str, str | None] = {
    "on queue": "available",
    "available": "off_queue",
    "busy": "off_queue",
    "away": "off_queue",
    "idle": "off_queue",
    "meeting": "off_queue",
    "training": "off_queue",
    "break": "break",
    "meal": "break",
    "offline": "offline",
}

_CONVERSATION_TOPIC = re.compile(r"^v2\.detail\.events\.conversation\.(?P<conversation>[^.]+)\.(?P<kind>.+)$")
_PRESENCE_TOPIC = re.compile(r"^v2\.audits\.entitytype\.UserPresence\.entityid\.(?P<user>[^.]+)$")

_TRANSFER_DISCONNECTS = frozenset(
    ("TRANSFER", "CONFERENCE_TRANSFER", "CONSULT_TRANSFER", "FORWARD_TRANSFER", "NO_ANSWER_TRANSFER",
     "NOT_AVAILABLE_TRANSFER", "DND_TRANSFER")
)
_IGNORED_KINDS = {
    "customer.start": "names no agent",
    "customer.end": "names no agent",
    "acd.start": "queue wait, before an agent takes the conversation",
    "acd.end": "queue wait, before an agent takes the conversation",
    "attributes": "conversation attributes, not agent work",
    "contact": "external contact update, not agent work",
    "outbound": "dialer event, names no agent",
    "flow.start": "IVR flow, before an agent",
    "flow.end": "IVR flow, before an agent",
}


@dataclass(slots=True)
class _User:
    presence: tuple[str, str] | None = None
    live: set[str] = field(default_factory=set)
    wrapping: set[str] = field(default_factory=set)
    state: tuple[str, str | None] | None = None


class GenesysCloudAdapter(Adapter):
    """Convert Genesys Cloud conversation detail events and presence audits.

    ``channels`` limits calls to these media types (VOICE and CALLBACK by default). Detail events
    name a queue but no team, so ``team_id`` is left out; map users to teams downstream.
    """

    source = SOURCE

    def __init__(
        self,
        *,
        lateness_s: float = DEFAULT_LATENESS_S,
        channels: tuple[str, ...] = ("VOICE", "CALLBACK"),
        status_states: Mapping[str, str | None] | None = None,
    ) -> None:
        super().__init__(lateness_s=lateness_s)
        self.channels = tuple(channel.upper() for channel in channels)
        self.status_states = check_status_states(DEFAULT_STATUS_STATES if status_states is None else status_states)
        self._users: dict[str, _User] = {}

    def _convert_document(self, document: object) -> Result:
        if not isinstance(document, dict):
            raise NativeEventError(f"expected a JSON object, got {type(document).__name__}")
        detail = document.get("detail") if "detail" in document else document
        if not isinstance(detail, dict) or "topicName" not in detail:
            raise NativeEventError(
                "document is neither an EventBridge envelope from Genesys Cloud (detail.topicName) nor a "
                f"notification (topicName, eventBody); its keys are {', '.join(sorted(document)[:12])}"
            )
        topic = require_str(detail, "topicName", "Genesys notification")
        body = detail.get("eventBody")
        if not isinstance(body, dict):
            raise NativeEventError(f"notification on {topic!r} has no eventBody object")
        native_id = document.get("id") if isinstance(document.get("id"), str) else None

        match = _CONVERSATION_TOPIC.match(topic)
        if match:
            return self._conversation(match["conversation"], match["kind"], body, native_id, document)
        match = _PRESENCE_TOPIC.match(topic)
        if match:
            return self._presence(match["user"], body, native_id, document)
        raise NativeEventError(
            f"topic {topic!r} is not one this adapter converts; send v2.detail.events.conversation.{{id}}"
            ".user.start|user.end|acw and v2.audits.entitytype.UserPresence.entityid.{id}"
        )

    def _conversation(self, conversation_id: str, kind: str, body: dict, native_id: str | None, original: object) -> Result:
        if kind in _IGNORED_KINDS:
            return self._ignore(f"conversation {kind} ({_IGNORED_KINDS[kind]})")
        if kind not in ("user.start", "user.end", "acw"):
            raise NativeEventError(
                f"conversation topic kind {kind!r} is unknown; this adapter converts user.start, user.end and acw"
            )
        what = f"conversation {kind} event"
        user_id = require_str(body, "userId", what)
        ts = ts_from_epoch_ms(body.get("eventTime"), f"{what} eventTime")
        media = str(body.get("mediaType", "")).upper()
        if media not in self.channels:
            return self._ignore(f"conversation on media type {media or 'none'} (not in channels)")
        session = body.get("sessionId") or body.get("participantId") or ""
        native_id = native_id or f"{conversation_id}.{kind}.{session}"
        return self._submit(
            user_id, ts, native_id, original,
            lambda: self._apply_conversation(user_id, conversation_id, kind, ts, body, native_id),
        )

    def _apply_conversation(
        self, user_id: str, conversation_id: str, kind: str, ts: float, body: dict, native_id: str
    ) -> list[dict]:
        user = self._users.setdefault(user_id, _User())
        events: list[dict] = []

        if kind == "user.start" and conversation_id not in user.live:
            user.live.add(conversation_id)
            direction = str(body.get("direction", "")).lower()
            events.append(
                self._event(
                    "call_started",
                    make_event_id(SOURCE, user_id, conversation_id, "call_started"),
                    user_id,
                    ts,
                    call_id=conversation_id,
                    direction=direction if direction in ("inbound", "outbound") else None,
                    queue=body.get("queueId"),
                )
            )
        elif kind == "user.end" and conversation_id in user.live:
            user.live.discard(conversation_id)
            user.wrapping.add(conversation_id)
            disconnect = body.get("disconnectType")
            events.append(
                self._event(
                    "call_ended",
                    make_event_id(SOURCE, user_id, conversation_id, "call_ended"),
                    user_id,
                    ts,
                    call_id=conversation_id,
                    disposition="transferred" if disconnect in _TRANSFER_DISCONNECTS else None,
                )
            )
        elif kind == "acw":
            # The acw event arrives when the wrap-up is submitted, so it ends after-call work.
            user.live.discard(conversation_id)
            user.wrapping.discard(conversation_id)

        events.extend(self._state_change(user_id, user, ts, native_id))
        return events

    def _presence(self, user_id: str, body: dict, native_id: str | None, original: object) -> Result:
        what = "UserPresence audit"
        ts = read_ts(body.get("eventTime"), f"{what} eventTime")
        new_presence = None
        for change in body.get("propertyChanges") or []:
            if isinstance(change, dict) and change.get("property") == "PRESENCE":
                values = change.get("newValues")
                if isinstance(values, list) and values and isinstance(values[0], str):
                    new_presence = values[0]
        if new_presence is None:
            return self._ignore("UserPresence audit without a PRESENCE change")
        native_id = native_id or require_str(body, "id", what)
        return self._submit(user_id, ts, native_id, original, lambda: self._apply_presence(user_id, new_presence, ts, native_id))

    def _apply_presence(self, user_id: str, presence: str, ts: float, native_id: str) -> list[dict]:
        user = self._users.setdefault(user_id, _User())
        state = state_for_status(self.status_states, presence) or "available"
        user.presence = (state, presence)
        return self._state_change(user_id, user, ts, native_id)

    def _state_change(self, user_id: str, user: _User, ts: float, native_id: str) -> list[dict]:
        if user.live:
            state = ("on_call", None)
        elif user.wrapping:
            state = ("acw", None)
        elif user.presence is not None:
            state = user.presence
        elif user.state is not None:
            # No presence seen yet: after a call the user is assumed back on queue.
            state = ("available", None)
        else:
            return []
        if state == user.state:
            return []
        user.state = state
        return [
            self._event(
                "agent_state",
                make_event_id(SOURCE, user_id, native_id, "agent_state", state[0]),
                user_id,
                ts,
                state=state[0],
                reason=state[1],
            )
        ]
