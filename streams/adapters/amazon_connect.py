"""Amazon Connect: agent event stream, Contact Lens real-time segments and Contact Lens rules.

The agent event stream (Kinesis, ``Version`` 2017-10-01) sends a full snapshot of the agent with
every event: the status the agent set (``AgentStatus.Name``) and the list of contacts with their
state. Calls, holds, after-call work and state changes are derived by comparing each snapshot with
the previous one applied for that agent. Contact Lens real-time segments name a contact but no
agent and no clock time, so the adapter links them to the agent through the contacts it has seen
in the agent event stream (or in contact events).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

from streams.adapters.base import (
    DEFAULT_LATENESS_S,
    Adapter,
    FlagRule,
    NativeEventError,
    Result,
    arn_resource_id,
    check_status_states,
    make_event_id,
    read_ts,
    require_str,
    state_for_status,
)

SOURCE = "amazon-connect"

AGENT_EVENT_TYPES = ("LOGIN", "LOGOUT", "STATE_CHANGE", "HEART_BEAT")
SEGMENT_EVENT_TYPES = ("STARTED", "SEGMENTS", "COMPLETED", "FAILED")

# Agent statuses Amazon Connect creates for every instance, plus common custom ones. Any other
# name is a custom status and maps to off_queue with the name as the reason.
DEFAULT_STATUS_STATES: dict[str, str | None] = {
    "available": "available",
    "offline": "offline",
    "break": "break",
    "lunch": "break",
    "meal": "break",
    "meeting": "off_queue",
    "training": "off_queue",
}

# Contact Lens gives one sentiment label per customer turn. These scores put the labels on the
# [-1, 1] scale of the sentiment event: a clear label counts as a moderately strong signal, and
# MIXED leans negative because the negative part is what strains the agent.
DEFAULT_SENTIMENT_SCORES: dict[str, float] = {
    "POSITIVE": 0.6,
    "NEUTRAL": 0.0,
    "MIXED": -0.2,
    "NEGATIVE": -0.6,
}

# Contact states in which the agent is talking to the customer, and in which the call is over but
# its after-contact work is not.
_LIVE = ("CONNECTED", "CONNECTED_ONHOLD")
_ENDED = "ENDED"
_DIRECTIONS = {"INBOUND": "inbound", "OUTBOUND": "outbound", "TRANSFER": "inbound", "QUEUE_TRANSFER": "inbound",
               "CALLBACK": "outbound"}

# Contacts remembered for linking Contact Lens segments and rules to agents; the oldest go first.
_MAX_REMEMBERED_CONTACTS = 50_000


@dataclass(slots=True)
class _Contact:
    contact_id: str
    state: str
    state_ts: float | None
    connected_ts: float | None
    initiation: str | None
    queue: str | None


@dataclass(slots=True)
class _Snapshot:
    status: str | None
    status_ts: float | None
    team_id: str | None
    contacts: dict[str, _Contact] = field(default_factory=dict)


@dataclass(slots=True)
class _AgentState:
    snapshot: _Snapshot | None = None
    state: tuple[str, str | None] | None = None
    team_id: str | None = None


@dataclass(slots=True)
class _ContactLink:
    agent_id: str
    connected_ts: float
    team_id: str | None


class AmazonConnectAdapter(Adapter):
    """Convert Amazon Connect agent events, Contact Lens segments and rule matches.

    >>> adapter = AmazonConnectAdapter(category_flags={"AbusiveLanguage": FlagRule("abuse")})
    >>> events, dead_letters = adapter.convert(agent_event)   # doctest: +SKIP
    >>> more, more_dead = adapter.flush()                     # doctest: +SKIP

    ``channels`` limits calls to these contact channels (VOICE by default, because the load index
    models calls; chats run several at once). ``category_flags`` maps Contact Lens category names
    and ``rule_flags`` maps Contact Lens rule names to the flag they stand for; both are empty by
    default because category and rule names are chosen by each contact center. ``issue_flag`` is
    the flag raised for every issue Contact Lens detects in a customer turn, off by default because
    an issue is the customer's reason for calling, not hostility.
    """

    source = SOURCE

    def __init__(
        self,
        *,
        lateness_s: float = DEFAULT_LATENESS_S,
        channels: tuple[str, ...] = ("VOICE",),
        status_states: Mapping[str, str | None] | None = None,
        sentiment_scores: Mapping[str, float] | None = None,
        category_flags: Mapping[str, FlagRule] | None = None,
        rule_flags: Mapping[str, FlagRule] | None = None,
        issue_flag: FlagRule | None = None,
    ) -> None:
        super().__init__(lateness_s=lateness_s)
        self.channels = tuple(channel.upper() for channel in channels)
        self.status_states = check_status_states(DEFAULT_STATUS_STATES if status_states is None else status_states)
        self.sentiment_scores = dict(DEFAULT_SENTIMENT_SCORES if sentiment_scores is None else sentiment_scores)
        for label, score in self.sentiment_scores.items():
            if not -1.0 <= score <= 1.0:
                raise ValueError(f"sentiment score for {label!r} is {score!r}; use a number from -1 to 1")
        self.category_flags = dict(category_flags or {})
        self.rule_flags = dict(rule_flags or {})
        self.issue_flag = issue_flag
        self._agents: dict[str, _AgentState] = {}
        self._contacts: OrderedDict[str, _ContactLink] = OrderedDict()

    def _convert_document(self, document: object) -> Result:
        if not isinstance(document, dict):
            raise NativeEventError(f"expected a JSON object, got {type(document).__name__}")

        if "AgentARN" in document or document.get("EventType") in AGENT_EVENT_TYPES:
            return self._agent_event(document)
        if document.get("EventType") in SEGMENT_EVENT_TYPES and "ContactId" in document:
            return self._segment_event(document)

        detail_type = document.get("detail-type")
        if detail_type == "Contact Lens Realtime Rules Matched":
            return self._rule_matched(document)
        if detail_type == "Amazon Connect Contact Event":
            return self._contact_event(document.get("detail"))
        if "contactId" in document and "eventType" in document:
            return self._contact_event(document)
        if "ConversationCharacteristics" in document and "JobStatus" in document:
            # Post-call output arrives after the call and repeats what the real-time segments give.
            return self._ignore("Contact Lens post-call analysis (real-time segments give the same signals live)")
        if isinstance(detail_type, str):
            return self._ignore(f"EventBridge detail-type {detail_type!r} carries no call event")

        raise NativeEventError(
            "document is not an agent event (AgentARN, EventType), a Contact Lens real-time segment "
            "event (ContactId, EventType STARTED/SEGMENTS/COMPLETED/FAILED) or an EventBridge event "
            f"(detail-type); its keys are {', '.join(sorted(document)[:12])}"
        )

    # Agent event stream ------------------------------------------------------------------------

    def _agent_event(self, document: dict) -> Result:
        what = "agent event"
        agent_id = arn_resource_id(document.get("AgentARN"), "agent", f"{what} AgentARN")
        event_id = require_str(document, "EventId", what)
        event_type = document.get("EventType")
        if event_type not in AGENT_EVENT_TYPES:
            raise NativeEventError(
                f"{what} {event_id!r}: EventType {event_type!r} is unknown; expected one of "
                f"{', '.join(AGENT_EVENT_TYPES)}"
            )
        ts = read_ts(document.get("EventTimestamp"), f"{what} {event_id!r} EventTimestamp")

        current = document.get("CurrentAgentSnapshot")
        if event_type == "LOGOUT" and current is None:
            snapshot = _Snapshot(status="Offline", status_ts=ts, team_id=None)
        elif isinstance(current, dict):
            snapshot = self._read_snapshot(current, f"{what} {event_id!r} CurrentAgentSnapshot")
        else:
            raise NativeEventError(f"{what} {event_id!r} has no CurrentAgentSnapshot object; {event_type} events carry one")
        if event_type == "LOGOUT":
            snapshot.status = "Offline"

        # Contacts are linked on arrival, not when applied, so that Contact Lens segments that
        # arrive while the agent event still waits in the reorder buffer find their agent.
        for contact in snapshot.contacts.values():
            if contact.connected_ts is not None:
                self._link_contact(contact.contact_id, agent_id, contact.connected_ts, snapshot.team_id)

        return self._submit(agent_id, ts, event_id, document, lambda: self._apply(agent_id, event_id, ts, snapshot))

    def _read_snapshot(self, raw: dict, what: str) -> _Snapshot:
        status = raw.get("AgentStatus")
        if not isinstance(status, dict):
            raise NativeEventError(f"{what} has no AgentStatus object")
        name = require_str(status, "Name", f"{what} AgentStatus")
        status_ts = read_ts(status["StartTimestamp"], f"{what} AgentStatus.StartTimestamp") if status.get(
            "StartTimestamp") else None

        team_id = None
        configuration = raw.get("Configuration")
        if isinstance(configuration, dict) and isinstance(configuration.get("RoutingProfile"), dict):
            profile_arn = configuration["RoutingProfile"].get("ARN")
            if isinstance(profile_arn, str) and "/routing-profile/" in profile_arn:
                team_id = profile_arn.rsplit("/", 1)[1]

        contacts: dict[str, _Contact] = {}
        raw_contacts = raw.get("Contacts") or []
        if not isinstance(raw_contacts, list):
            raise NativeEventError(f"{what}: Contacts must be a list, not {raw_contacts!r}")
        for index, item in enumerate(raw_contacts):
            where = f"{what} Contacts[{index}]"
            if not isinstance(item, dict):
                raise NativeEventError(f"{where} must be an object, not {item!r}")
            if str(item.get("Channel", "VOICE")).upper() not in self.channels:
                continue
            contact_id = require_str(item, "ContactId", where)
            state = require_str(item, "State", where)
            queue = item.get("Queue")
            contacts[contact_id] = _Contact(
                contact_id=contact_id,
                state=state,
                state_ts=_optional_ts(item, "StateStartTimestamp", where),
                connected_ts=_optional_ts(item, "ConnectedToAgentTimestamp", where),
                initiation=item.get("InitiationMethod"),
                queue=queue.get("Name") if isinstance(queue, dict) else None,
            )
        return _Snapshot(status=name, status_ts=status_ts, team_id=team_id, contacts=contacts)

    def _apply(self, agent_id: str, event_id: str, ts: float, current: _Snapshot) -> list[dict]:
        agent = self._agents.setdefault(agent_id, _AgentState())
        previous = agent.snapshot or _Snapshot(status=None, status_ts=None, team_id=None)
        team_id = current.team_id or agent.team_id
        events: list[dict] = []

        for contact in current.contacts.values():
            before = previous.contacts.get(contact.contact_id)
            events.extend(self._contact_changes(agent_id, team_id, ts, before, contact))
        for contact_id, before in previous.contacts.items():
            if contact_id not in current.contacts and before.state in _LIVE:
                # The contact vanished while live, so the snapshot that ended it was never seen.
                events.extend(self._call_end(agent_id, team_id, before, ts))

        state = self._state_of(current)
        if state != agent.state:
            state_ts = self._state_ts(current, state[0], ts, agent_id)
            events.append(
                self._event(
                    "agent_state",
                    make_event_id(SOURCE, agent_id, event_id, "agent_state", state[0]),
                    agent_id,
                    state_ts,
                    team_id=team_id,
                    state=state[0],
                    reason=state[1],
                )
            )

        agent.snapshot = current
        agent.state = state
        agent.team_id = team_id
        return events

    def _contact_changes(
        self, agent_id: str, team_id: str | None, ts: float, before: _Contact | None, contact: _Contact
    ) -> list[dict]:
        events: list[dict] = []
        was_started = before is not None and (before.state in _LIVE or before.state == _ENDED)
        is_started = contact.state in _LIVE or (contact.state == _ENDED and contact.connected_ts is not None)
        call_id = contact.contact_id

        if is_started and not was_started:
            events.append(
                self._event(
                    "call_started",
                    make_event_id(SOURCE, agent_id, call_id, "call_started"),
                    agent_id,
                    contact.connected_ts or contact.state_ts or ts,
                    team_id=team_id,
                    call_id=call_id,
                    direction=_DIRECTIONS.get(contact.initiation or ""),
                    queue=contact.queue,
                )
            )

        was_held = before is not None and before.state == "CONNECTED_ONHOLD"
        is_held = contact.state == "CONNECTED_ONHOLD"
        if is_held and not was_held:
            hold_ts = contact.state_ts or ts
            events.append(
                self._event(
                    "hold_started",
                    make_event_id(SOURCE, agent_id, call_id, "hold_started", int(hold_ts * 1000)),
                    agent_id,
                    hold_ts,
                    team_id=team_id,
                    call_id=call_id,
                )
            )
        if was_held and not is_held:
            events.append(self._hold_end(agent_id, team_id, before, contact.state_ts or ts))

        if contact.state == _ENDED and (before is None or before.state != _ENDED) and is_started:
            end_ts = contact.state_ts or ts
            events.append(
                self._event(
                    "call_ended",
                    make_event_id(SOURCE, agent_id, call_id, "call_ended"),
                    agent_id,
                    end_ts,
                    team_id=team_id,
                    call_id=call_id,
                )
            )
        return events

    def _hold_end(self, agent_id: str, team_id: str | None, held: _Contact, end_ts: float) -> dict:
        hold_ts = held.state_ts if held.state_ts is not None else end_ts
        return self._event(
            "hold_ended",
            make_event_id(SOURCE, agent_id, held.contact_id, "hold_ended", int(hold_ts * 1000)),
            agent_id,
            end_ts,
            team_id=team_id,
            call_id=held.contact_id,
        )

    def _call_end(self, agent_id: str, team_id: str | None, before: _Contact, end_ts: float) -> list[dict]:
        events = []
        if before.state == "CONNECTED_ONHOLD":
            events.append(self._hold_end(agent_id, team_id, before, end_ts))
        events.append(
            self._event(
                "call_ended",
                make_event_id(SOURCE, agent_id, before.contact_id, "call_ended"),
                agent_id,
                end_ts,
                team_id=team_id,
                call_id=before.contact_id,
            )
        )
        return events

    def _state_of(self, snapshot: _Snapshot) -> tuple[str, str | None]:
        states = {contact.state for contact in snapshot.contacts.values()}
        if states & set(_LIVE):
            return "on_call", None
        if _ENDED in states:
            return "acw", None
        name = snapshot.status or "Offline"
        state = state_for_status(self.status_states, name)
        if state is None:
            return "available", name
        return state, name

    def _state_ts(self, snapshot: _Snapshot, state: str, ts: float, agent_id: str) -> float:
        last_ts = self._memory[agent_id].last_ts
        if state == "on_call":
            began = max((c.connected_ts or ts) for c in snapshot.contacts.values() if c.state in _LIVE)
        elif state == "acw":
            began = max((c.state_ts or ts) for c in snapshot.contacts.values() if c.state == _ENDED)
        elif snapshot.status_ts is not None and snapshot.status_ts > last_ts:
            began = snapshot.status_ts
        else:
            # The status itself did not change (an agent leaving after-contact work returns to a
            # status set before the call), so the event that shows the change is the best time.
            began = ts
        return min(ts, max(began, last_ts))

    # Contact links -----------------------------------------------------------------------------

    def _link_contact(self, contact_id: str, agent_id: str, connected_ts: float, team_id: str | None) -> None:
        self._contacts[contact_id] = _ContactLink(agent_id, connected_ts, team_id)
        self._contacts.move_to_end(contact_id)
        while len(self._contacts) > _MAX_REMEMBERED_CONTACTS:
            self._contacts.popitem(last=False)

    def _contact_event(self, detail: object) -> Result:
        # The agent event stream already gives every call start and end, with holds and
        # after-contact work, so contact events only link contacts to agents for Contact Lens.
        if not isinstance(detail, dict):
            raise NativeEventError("contact event has no detail object")
        contact_id = require_str(detail, "contactId", "contact event")
        agent_info = detail.get("agentInfo")
        if isinstance(agent_info, dict) and agent_info.get("agentArn") and agent_info.get("connectedToAgentTimestamp"):
            agent_id = arn_resource_id(agent_info["agentArn"], "agent", "contact event agentInfo.agentArn")
            connected_ts = read_ts(agent_info["connectedToAgentTimestamp"], "contact event connectedToAgentTimestamp")
            agent = self._agents.get(agent_id)
            self._link_contact(contact_id, agent_id, connected_ts, agent.team_id if agent else None)
        return self._ignore("contact event (used only to link contacts to agents; the agent event stream gives calls)")

    # Contact Lens ------------------------------------------------------------------------------

    def _segment_event(self, document: dict) -> Result:
        what = "Contact Lens segment event"
        contact_id = require_str(document, "ContactId", what)
        event_type = document["EventType"]
        if event_type != "SEGMENTS":
            return self._ignore(f"Contact Lens {event_type} (marks the analysis, not the call)")
        if str(document.get("Channel", "VOICE")).upper() not in self.channels:
            return self._ignore(f"Contact Lens segments on channel {document.get('Channel')!r}")

        link = self._contacts.get(contact_id)
        if link is None:
            raise NativeEventError(
                f"{what} for contact {contact_id!r} cannot be linked to an agent: the contact was not in "
                "any agent event or contact event this adapter has read. Segments carry no agent, so "
                "send the agent event stream through the same adapter, ahead of the segments."
            )
        segments = document.get("Segments")
        if not isinstance(segments, list):
            raise NativeEventError(f"{what} for contact {contact_id!r}: Segments must be a list, not {segments!r}")

        team_id = link.team_id
        events: list[dict] = []
        for index, segment in enumerate(segments):
            if not isinstance(segment, dict):
                raise NativeEventError(f"{what} for contact {contact_id!r}: Segments[{index}] is not an object")
            if isinstance(segment.get("Transcript"), dict):
                events.extend(self._transcript(link, team_id, contact_id, segment["Transcript"], index))
            if isinstance(segment.get("Categories"), dict):
                events.extend(self._categories(link, team_id, contact_id, segment["Categories"]))
        return events, []

    def _transcript(self, link: _ContactLink, team_id: str | None, contact_id: str, transcript: dict, index: int) -> list[dict]:
        # Only the customer's turns count: scoring the agent's own words would infer the
        # employee's emotion, which agentload does not do.
        if transcript.get("ParticipantRole") != "CUSTOMER":
            return []
        where = f"Contact Lens transcript of contact {contact_id!r}"
        transcript_id = transcript.get("Id") or f"segment-{index}"
        begin_ms, end_ms = transcript.get("BeginOffsetMillis"), transcript.get("EndOffsetMillis")
        if not all(isinstance(value, int) and value >= 0 for value in (begin_ms, end_ms)) or end_ms < begin_ms:
            raise NativeEventError(
                f"{where}: BeginOffsetMillis {begin_ms!r} and EndOffsetMillis {end_ms!r} must be whole "
                "milliseconds with begin <= end"
            )
        ts = link.connected_ts + end_ms / 1000.0
        events: list[dict] = []

        label = transcript.get("Sentiment")
        if label is not None:
            if label not in self.sentiment_scores:
                raise NativeEventError(
                    f"{where}: Sentiment {label!r} has no score; expected one of {', '.join(self.sentiment_scores)}"
                )
            events.append(
                self._event(
                    "sentiment",
                    make_event_id(SOURCE, contact_id, transcript_id, "sentiment"),
                    link.agent_id,
                    ts,
                    team_id=team_id,
                    call_id=contact_id,
                    speaker="customer",
                    score=self.sentiment_scores[label],
                    window_s=(end_ms - begin_ms) / 1000.0,
                )
            )
        if self.issue_flag is not None and transcript.get("IssuesDetected"):
            events.append(
                self._event(
                    "interaction_flag",
                    make_event_id(SOURCE, contact_id, transcript_id, "issue", self.issue_flag.flag),
                    link.agent_id,
                    ts,
                    team_id=team_id,
                    call_id=contact_id,
                    flag=self.issue_flag.flag,
                    speaker=self.issue_flag.speaker,
                )
            )
        return events

    def _categories(self, link: _ContactLink, team_id: str | None, contact_id: str, categories: dict) -> list[dict]:
        matched = categories.get("MatchedCategories") or []
        details = categories.get("MatchedDetails") or {}
        events: list[dict] = []
        for name in matched:
            rule = self.category_flags.get(name)
            if rule is None:
                self.ignored["Contact Lens category with no flag in category_flags"] += 1
                continue
            points = (details.get(name) or {}).get("PointsOfInterest") or []
            ends = [p["EndOffsetMillis"] for p in points if isinstance(p, dict) and isinstance(p.get("EndOffsetMillis"), int)]
            ts = link.connected_ts + (max(ends) / 1000.0 if ends else 0.0)
            # One flag per category per contact: Contact Lens repeats a match in later segments.
            events.append(
                self._event(
                    "interaction_flag",
                    make_event_id(SOURCE, contact_id, "category", name),
                    link.agent_id,
                    ts,
                    team_id=team_id,
                    call_id=contact_id,
                    flag=rule.flag,
                    speaker=rule.speaker,
                )
            )
        return events

    def _rule_matched(self, document: dict) -> Result:
        what = "Contact Lens Realtime Rules Matched event"
        detail = document.get("detail")
        if not isinstance(detail, dict):
            raise NativeEventError(f"{what} has no detail object")
        rule_name = require_str(detail, "ruleName", what)
        rule = self.rule_flags.get(rule_name)
        if rule is None:
            return self._ignore("Contact Lens rule with no flag in rule_flags")
        agent_id = arn_resource_id(detail.get("agentArn"), "agent", f"{what} agentArn")
        contact_id = arn_resource_id(detail.get("contactArn"), "contact", f"{what} contactArn")
        ts = read_ts(document.get("time"), f"{what} time")
        agent = self._agents.get(agent_id)
        event = self._event(
            "interaction_flag",
            make_event_id(SOURCE, contact_id, "rule", rule_name),
            agent_id,
            ts,
            team_id=agent.team_id if agent else None,
            call_id=contact_id,
            flag=rule.flag,
            speaker=rule.speaker,
        )
        return [event], []


def _optional_ts(item: dict, key: str, what: str) -> float | None:
    value = item.get(key)
    if value is None:
        return None
    return read_ts(value, f"{what} {key}")
