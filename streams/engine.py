"""The load engine: input events in, break transitions, snapshots and dead letters out.

The engine is pure: no I/O and no clock. Time is event time, carried by the events themselves and
by :meth:`Engine.advance_to`, which a runtime calls on its periodic tick. Both runtimes, embedded and
Faust, drive the same engine, so the same events give the same transitions.

Ordering. Events wait in a buffer until the newest event time seen, minus ``lateness_s``, passes
them. They are then applied in event-time order, ties broken by type and ``event_id``, so events
shuffled within the bound give the same result as in order. An event that arrives later than that
is applied at once, at the engine's current time, and counted as late: it never rewrites what was
already emitted. Timers (offer expiry and the like) fire at their exact deadlines, between events.

Duplicates. An ``event_id`` seen within ``dedupe_window_s`` of event time is dropped.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections import deque

from alerts.policy import (
    AGENT_TIMERS,
    TRIGGER_HOSTILE_STREAK,
    TRIGGER_RED,
    BreakPolicy,
    TeamState,
    Transition,
)
from features.baseline import AudioBaseline, customer_intensity, talk_over
from features.call_factors import (
    BACK_TO_BACK,
    CUSTOMER_INTENSITY,
    TALK_OVER,
    FACTORS,
    ESCALATION,
    HANDLE_TIME,
    HOLD,
    HOSTILITY,
    NEGATIVE_SENTIMENT,
    ewma_update,
    handle_time_impulse,
    hold_impulse,
    negative_sentiment_impulse,
    sentiment_deviation,
)
from streams.config import Config
from streams.events import TYPE_RANK, Event, format_ts
from streams.state import AMBER, GREEN, LEVELS, RECOVERY_STATES, RED, AgentState, CallState

log = logging.getLogger("agentload.engine")

# A call longer than this is a data error, not a long call: the platform lost its end.
MAX_HANDLE_TIME_S = 12 * 3600.0

# Event time between two clean-ups of the de-duplication ids and ended-break history.
_FORGET_EVERY_S = 10.0

# Timer that closes a call whose call_ended never came, keyed by agent_id.
_TIMER_CALL_LIMIT = "call_limit"

# Bits of CallState.flags: impulses counted at most once per call.
FLAG_ESCALATION = 1
FLAG_ABUSE = 2
FLAG_THREAT = 4
FLAG_CLOSED_AT_LIMIT = 8

# Dead-letter reasons, a closed set so that metrics stay bounded.
REASON_UNKNOWN_CALL = "unknown_call"
REASON_UNKNOWN_BREAK = "unknown_break"
REASON_ABSURD_VALUE = "absurd_value"
REASON_INVALID_ACTION = "invalid_action"
# Outcome of a valid event that by design changes nothing, such as the agent's own sentiment.
IGNORED = "ignored"

# Final break statuses that each action would lead to, to recognise a repeated action on an
# ended break as harmless.
_ACTION_FINAL_STATUS = {"decline": "declined", "complete": "completed", "cancel": "cancelled"}


def _starts_agent(event: Event) -> bool:
    """Return whether ``event`` may be the first one seen of its agent."""
    event_type = event.type
    if event_type == "agent_state" or event_type == "call_started":
        return True
    return event_type == "break_action" and event.fields["action"] == "request"


class Origin:
    """The topic, partition, offset, key and value an event came from, for its dead letter."""

    __slots__ = ("topic", "partition", "offset", "key", "value")

    def __init__(self, topic: str, partition: int | None, offset: int | None, key: bytes | str | None, value: bytes | str):
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value


class DeadLetter:
    """A message, or one event of it, that the engine could not use, and why."""

    __slots__ = ("error", "reason", "origin")

    def __init__(self, error: str, reason: str, origin: Origin | None):
        self.error = error
        self.reason = reason
        self.origin = origin


class Engine:
    """Per-agent load state and the break policy over one ordered stream of events.

    Usage::

        engine = Engine(load_config())
        for event in events:
            engine.submit(event)
        engine.flush()
        for transition in engine.drain_transitions():
            print(transition.type, transition.agent_id)
    """

    def __init__(self, config: Config):
        self.config = config
        runtime = config.runtime
        self._lateness_s = runtime.lateness_s
        self._dedupe_window_s = runtime.dedupe_window_s
        self._default_team = runtime.default_team
        self._history_s = runtime.break_history_s

        self.agents: dict[str, AgentState] = {}
        self.teams: dict[str, TeamState] = {}
        self.transitions: list[Transition] = []
        self.dead_letters: list[DeadLetter] = []
        # (team, transition type) -> count, for metrics.
        self.transition_counts: dict[tuple[str, str], int] = {}
        self.policy = BreakPolicy(
            self.agents, self.teams, self._schedule, self._emit, self._change_state, self._recovered
        )
        # Calls closed because they outlived MAX_HANDLE_TIME_S with no call_ended.
        self.calls_closed_at_limit = 0

        self._buffer: list[tuple] = []
        self._timers: list[tuple] = []
        # Customer audio baseline of each team: the prior of agents with little audio history.
        self._team_audio: dict[str, AudioBaseline] = {}
        self._timer_seq = 0
        # Event ids seen, with their event time, and the same ids in arrival order for clean-up.
        self._seen: dict[str, float] = {}
        self._seen_order: deque[str] = deque()
        self.max_ts = -math.inf
        self.applied_until = -math.inf
        self._next_forget_at = -math.inf
        # (type, outcome) -> count for outcomes other than processed: duplicate, late, ignored or a
        # dead-letter reason. Processed events are counted by type alone, which is cheaper.
        self._counts: dict[tuple[str, str], int] = {}
        self._processed: dict[str, int] = {}

        self._handlers = {
            "agent_state": self._on_agent_state,
            "call_started": self._on_call_started,
            "call_ended": self._on_call_ended,
            "hold_started": self._on_hold_started,
            "hold_ended": self._on_hold_ended,
            "transfer": self._on_transfer,
            "sentiment": self._on_sentiment,
            "interaction_flag": self._on_interaction_flag,
            "break_action": self._on_break_action,
            "audio_features": self._on_audio_features,
        }

    # Input ------------------------------------------------------------------------------------

    def submit(self, event: Event, origin: Origin | None = None) -> None:
        """Take one validated event; apply it now, or buffer it until the lateness bound passes."""
        event_id = event.event_id
        seen = self._seen
        if event_id in seen:
            self._count(event.type, "duplicate")
            return
        ts = event.ts
        seen[event_id] = ts
        self._seen_order.append(event_id)

        if ts < self.applied_until:
            self._apply(event, origin, self.applied_until, "late")
            return

        buffer = self._buffer
        heapq.heappush(buffer, (ts, TYPE_RANK[event.type], event_id, event, origin))
        if ts > self.max_ts:
            self.max_ts = ts
            watermark = ts - self._lateness_s
            if watermark > self.applied_until:
                if buffer[0][0] < watermark:
                    self._release(watermark)
                else:
                    self._advance_watermark(watermark)

    def advance_to(self, now: float) -> None:
        """Move event time on to ``now`` minus the lateness bound, as a runtime's tick does.

        Buffered events and timers up to there are applied, so idle agents' offers still expire.
        """
        self._release(now - self._lateness_s)

    def flush(self) -> None:
        """Apply everything buffered, as at the end of a finite input."""
        if self.max_ts > -math.inf:
            self._release(self.max_ts, inclusive=True)

    def drain_transitions(self) -> list[Transition]:
        transitions = self.transitions[:]
        self.transitions.clear()
        return transitions

    def drain_dead_letters(self) -> list[DeadLetter]:
        dead_letters = self.dead_letters[:]
        self.dead_letters.clear()
        return dead_letters

    def reject(self, error: str, reason: str, origin: Origin | None, event_type: str = "unknown") -> None:
        """Record input that failed before reaching the engine (bad JSON, an invalid event)."""
        self._count(event_type, reason)
        self.dead_letters.append(DeadLetter(error, reason, origin))

    # Ordering and time ------------------------------------------------------------------------

    def _advance_watermark(self, watermark: float) -> None:
        if self._timers and self._timers[0][0] <= watermark:
            self._fire_timers(watermark)
        self.applied_until = watermark
        if watermark >= self._next_forget_at:
            self._forget(watermark)
            self._next_forget_at = watermark + _FORGET_EVERY_S

    def _release(self, watermark: float, inclusive: bool = False) -> None:
        # Events at the watermark itself stay buffered: one exactly lateness_s behind the newest
        # event may still arrive, and it must be applied in order with them, not after them.
        if watermark < self.applied_until or (watermark == self.applied_until and not inclusive):
            return
        buffer = self._buffer
        timers = self._timers
        apply = self._apply
        while buffer and (buffer[0][0] < watermark or (inclusive and buffer[0][0] == watermark)):
            ts, _, _, event, origin = heapq.heappop(buffer)
            if timers and timers[0][0] <= ts:
                self._fire_timers(ts)
            apply(event, origin, ts, "processed")
        if timers and timers[0][0] <= watermark:
            self._fire_timers(watermark)
        self.applied_until = watermark
        if watermark >= self._next_forget_at:
            self._forget(watermark)
            self._next_forget_at = watermark + _FORGET_EVERY_S

    def _emit(self, transition: Transition) -> None:
        key = (transition.team_id, transition.type)
        self.transition_counts[key] = self.transition_counts.get(key, 0) + 1
        self.transitions.append(transition)

    def _schedule(self, deadline: float, kind: str, key: str, token: object) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (deadline, self._timer_seq, kind, key, token))

    def _fire_timers(self, until: float) -> None:
        timers = self._timers
        while timers and timers[0][0] <= until:
            deadline, _, kind, key, token = heapq.heappop(timers)
            if kind == _TIMER_CALL_LIMIT:
                self._close_call_at_limit(key, deadline)
                continue
            if kind in AGENT_TIMERS:
                agent = self.agents.get(key)
            else:
                brk = self.policy.breaks.get(key)
                agent = self.agents.get(brk.agent_id) if brk is not None else None
            if agent is None:
                continue
            self._advance(agent, deadline)
            self.policy.on_timer(kind, key, token, deadline)

    def _forget(self, watermark: float) -> None:
        cutoff = watermark - self._dedupe_window_s
        order = self._seen_order
        seen = self._seen
        # Ids leave in arrival order. An id that arrived early with a recent time holds back the
        # ones behind it until it is old too, so a few ids stay a little longer than needed.
        while order and seen[order[0]] < cutoff:
            del seen[order.popleft()]
        self.policy.forget_ended(watermark - self._history_s)

    def _count(self, event_type: str, outcome: str) -> None:
        key = (event_type, outcome)
        self._counts[key] = self._counts.get(key, 0) + 1

    @property
    def counts(self) -> dict[tuple[str, str], int]:
        """Return events handled so far by (type, outcome)."""
        counts = dict(self._counts)
        for event_type, count in self._processed.items():
            counts[(event_type, "processed")] = count
        return counts

    # Applying events --------------------------------------------------------------------------

    def _apply(self, event: Event, origin: Origin | None, now: float, outcome: str) -> None:
        agent = self.agents.get(event.agent_id)
        if agent is None and not _starts_agent(event):
            # Nothing of an unknown agent but its state, a call or a break request can apply, and
            # a dead letter must not leave a phantom agent behind to count in team gating.
            reason, error = self._unknown_agent(event)
            self._count(event.type, reason)
            self.dead_letters.append(DeadLetter(error, reason, origin))
            return
        if agent is None or (event.team_id is not None and event.team_id != agent.team_id):
            agent = self._agent_for(event, now)
        # Handlers advance the agent to ``now`` when they change it. Level changes between events
        # are found analytically, so skipping the advance for an event that changes nothing (most
        # customer sentiment) leaves every later result the same.
        result = self._handlers[event.type](agent, event, now)
        if result is None:
            if outcome == "processed":
                processed = self._processed
                processed[event.type] = processed.get(event.type, 0) + 1
            else:
                self._count(event.type, outcome)
        elif result == IGNORED:
            self._count(event.type, IGNORED)
        else:
            reason, error = result
            self._count(event.type, reason)
            self.dead_letters.append(DeadLetter(error, reason, origin))

    def _unknown_agent(self, event: Event) -> tuple[str, str]:
        if event.type == "break_action":
            brk = self.policy.breaks.get(event.fields.get("break_id"))
            if brk is not None:
                return REASON_INVALID_ACTION, (
                    f"break {brk.break_id!r} belongs to agent {brk.agent_id!r}, not {event.agent_id!r}; "
                    "send the action with the break's own agent_id"
                )
        reason = REASON_UNKNOWN_BREAK if event.type == "break_action" else REASON_UNKNOWN_CALL
        return reason, (
            f"{event.type} for agent {event.agent_id!r}, who is not known yet: no agent_state, call_started "
            "or break request was seen for this agent; send those first, or check the agent_id"
        )

    def _agent_for(self, event: Event, now: float) -> AgentState:
        agent = self.agents.get(event.agent_id)
        team_id = event.team_id
        if agent is None:
            team_id = team_id or self._default_team
            agent = AgentState(event.agent_id, team_id, self.config.params(team_id), now)
            self.agents[event.agent_id] = agent
            self._team(team_id).logged_in += 1
            return agent
        if team_id is not None and team_id != agent.team_id:
            self._move_team(agent, team_id)
        self._advance(agent, now)
        return agent

    def _team(self, team_id: str) -> TeamState:
        team = self.teams.get(team_id)
        if team is None:
            team = self.teams[team_id] = TeamState(team_id)
        return team

    def _move_team(self, agent: AgentState, team_id: str) -> None:
        # NOTE: an open break keeps its place in the old team until it ends.
        if agent.state != "offline":
            self.teams[agent.team_id].logged_in -= 1
            self._team(team_id).logged_in += 1
        else:
            self._team(team_id)
        agent.team_id = team_id
        agent.params = self.config.params(team_id)
        agent.dirty = True

    def _advance(self, agent: AgentState, now: float) -> None:
        if now <= agent.t:
            return
        elevated_before = agent.elevated_since
        if agent.advance(now):
            self.policy.trigger(agent, TRIGGER_RED, agent.red_entered_at)
        if agent.elevated_since is not None and agent.elevated_since != elevated_before:
            self.policy.on_elevated(agent)

    def _add(self, agent: AgentState, factor: int, points: float, now: float) -> None:
        elevated_before = agent.elevated_since
        if agent.add(factor, points, now):
            self.policy.trigger(agent, TRIGGER_RED, now)
        if agent.elevated_since is not None and agent.elevated_since != elevated_before:
            self.policy.on_elevated(agent)

    def _change_state(self, agent: AgentState, new_state: str, now: float) -> str:
        old_state = agent.state
        if new_state == old_state:
            return old_state
        params = agent.params
        stayed_s = now - agent.state_since
        if (old_state in RECOVERY_STATES and stayed_s >= params.min_recovery_s) or (
            old_state == "available" and stayed_s >= params.idle_recovery_s
        ):
            self._recovered(agent, now)
        elif old_state in RECOVERY_STATES and new_state not in RECOVERY_STATES:
            self.policy.rearm_amber_hold(agent, now)
        if old_state == "offline":
            self.teams[agent.team_id].logged_in += 1
        elif new_state == "offline":
            self.teams[agent.team_id].logged_in -= 1
        agent.set_state(new_state, now)
        if old_state == "on_call":
            self.policy.offer_deferred(self.teams[agent.team_id], now)
        return old_state

    def _recovered(self, agent: AgentState, now: float) -> None:
        agent.calls_since_break = 0
        agent.last_recovery_end = now
        agent.hostile_times = ()
        if agent.elevated_since is not None:
            agent.elevated_since = now
            self.policy.on_elevated(agent)

    # Call events ------------------------------------------------------------------------------

    def _on_agent_state(self, agent: AgentState, event: Event, now: float):
        self._advance(agent, now)
        new_state = event.fields["state"]
        if new_state == agent.state:
            return None
        old_state = self._change_state(agent, new_state, now)
        if new_state == "offline" and agent.call is not None:
            agent.call = None
        self.policy.on_agent_state(agent, old_state, now)
        if new_state != "on_call":
            self.policy.deliver_pending(agent, now)
        return None

    def _on_call_started(self, agent: AgentState, event: Event, now: float):
        self._advance(agent, now)
        call = agent.call
        if call is not None:
            if call.call_id == event.call_id:
                return None
            # The platform lost the previous call's end: close it here so the agent is not
            # stuck on a call forever. Past the handle-time bound its length is unknown.
            self._end_call(agent, now, None, count_handle_time=now - call.started_at <= MAX_HANDLE_TIME_S)

        self.policy.on_call_started(agent, now)
        self._change_state(agent, "on_call", now)
        agent.call = CallState(event.call_id, now)
        if not agent.call_limit_armed:
            # One timer per agent, not per call, so pending timers stay bounded by the agents.
            agent.call_limit_armed = True
            self._schedule(now + MAX_HANDLE_TIME_S, _TIMER_CALL_LIMIT, agent.agent_id, None)
        agent.calls += 1
        agent.calls_since_break += 1
        if agent.last_call_end is not None and now - agent.last_call_end < agent.params.micro_gap_s:
            self._add(agent, BACK_TO_BACK, agent.params.back_to_back_points, now)
        return None

    def _on_call_ended(self, agent: AgentState, event: Event, now: float):
        self._advance(agent, now)
        call = agent.call
        if call is None or call.call_id != event.call_id:
            if event.call_id == agent.last_call_id and agent.last_call_flags & FLAG_CLOSED_AT_LIMIT:
                return REASON_ABSURD_VALUE, (
                    f"call {event.call_id!r} of agent {event.agent_id!r} would last longer than "
                    f"{MAX_HANDLE_TIME_S:.0f} s, so it was closed at that limit without counting its handle time or "
                    "hold; check the ts of its call_started and call_ended"
                )
            if event.call_id == agent.last_call_id:
                return REASON_UNKNOWN_CALL, (
                    f"call_ended for call {event.call_id!r} of agent {event.agent_id!r}, which has already ended; "
                    "a repeated call_ended needs the same event_id as the first to be dropped as a duplicate"
                )
            return REASON_UNKNOWN_CALL, (
                f"call_ended for call {event.call_id!r} of agent {event.agent_id!r}, but that call is not open "
                f"(no call_started seen for it within the {self._lateness_s:g} s lateness bound); send "
                "call_started first, or check the call_id"
            )
        handle_time_s = event.ts - call.started_at
        if handle_time_s < 0 or handle_time_s > MAX_HANDLE_TIME_S:
            self._end_call(agent, now, event.fields.get("disposition"), count_handle_time=False)
            return REASON_ABSURD_VALUE, (
                f"call {event.call_id!r} of agent {event.agent_id!r} would last {handle_time_s:.0f} s "
                f"(from {format_ts(call.started_at)} to {format_ts(event.ts)}), outside 0 to {MAX_HANDLE_TIME_S:.0f} s; "
                "the call was closed without counting its handle time or hold; check the ts of its call_started and call_ended"
            )
        self._end_call(agent, now, event.fields.get("disposition"))
        return None

    def _close_call_at_limit(self, agent_id: str, now: float) -> None:
        agent = self.agents.get(agent_id)
        if agent is None:
            return
        agent.call_limit_armed = False
        call = agent.call
        if call is None:
            return
        deadline = call.started_at + MAX_HANDLE_TIME_S
        if deadline > now:
            # A later call is open: watch that one.
            agent.call_limit_armed = True
            self._schedule(deadline, _TIMER_CALL_LIMIT, agent_id, None)
            return
        call_id = call.call_id
        self._advance(agent, now)
        self.calls_closed_at_limit += 1
        log.warning(
            "closed call %s of agent %s: no call_ended within %.0f h, so its handle time is not counted",
            call_id,
            agent_id,
            MAX_HANDLE_TIME_S / 3600,
        )
        self._end_call(agent, now, None, count_handle_time=False)
        agent.last_call_flags |= FLAG_CLOSED_AT_LIMIT

    def _end_call(self, agent: AgentState, now: float, disposition: str | None, count_handle_time: bool = True) -> None:
        call = agent.call
        params = agent.params
        agent.call = None
        agent.last_call_end = now
        agent.last_call_id = call.call_id
        agent.last_call_flags = call.flags
        if agent.state == "on_call":
            self._change_state(agent, "available", now)

        if count_handle_time and call.hold_started_at is not None:
            self._add(agent, HOLD, hold_impulse(params, now - call.hold_started_at), now)
        handle_time_s = now - call.started_at
        if count_handle_time and handle_time_s > 0:
            self._add(agent, HANDLE_TIME, handle_time_impulse(params, handle_time_s, agent.ht_log_mean, agent.ht_calls), now)
            agent.ht_log_mean, agent.ht_log_dev = ewma_update(
                agent.ht_log_mean, agent.ht_log_dev, agent.ht_calls, math.log(handle_time_s), params.ewma_alpha
            )
            agent.ht_calls += 1
        if disposition in ("escalated", "transferred") and not call.flags & FLAG_ESCALATION:
            self._add(agent, ESCALATION, params.escalation_points, now)
        if call.sentiment_count:
            agent.sentiment_mean, agent.sentiment_dev = ewma_update(
                agent.sentiment_mean,
                agent.sentiment_dev,
                agent.sentiment_calls,
                call.sentiment_sum / call.sentiment_count,
                params.ewma_alpha,
            )
            agent.sentiment_calls += 1

        self.policy.deliver_pending(agent, now)

    def _open_call(self, agent: AgentState, event: Event) -> CallState | None:
        call = agent.call
        if call is not None and call.call_id == event.call_id:
            return call
        return None

    def _not_open(self, event: Event, last_call_counts: bool = True):
        known = "neither open nor the agent's last call" if last_call_counts else "not open"
        return REASON_UNKNOWN_CALL, (
            f"{event.type} for call {event.call_id!r} of agent {event.agent_id!r}, but that call is {known}; "
            "send call_started first, or check the call_id"
        )

    def _on_hold_started(self, agent: AgentState, event: Event, now: float):
        call = self._open_call(agent, event)
        if call is None:
            return self._not_open(event, last_call_counts=False)
        if call.hold_started_at is None:
            call.hold_started_at = now
        return None

    def _on_hold_ended(self, agent: AgentState, event: Event, now: float):
        self._advance(agent, now)
        call = self._open_call(agent, event)
        if call is None:
            return self._not_open(event, last_call_counts=False)
        if call.hold_started_at is not None:
            self._add(agent, HOLD, hold_impulse(agent.params, now - call.hold_started_at), now)
            call.hold_started_at = None
        return None

    def _on_transfer(self, agent: AgentState, event: Event, now: float):
        self._advance(agent, now)
        return self._escalate(agent, event, now)

    def _escalate(self, agent: AgentState, event: Event, now: float):
        first = self._mark_once(agent, event, FLAG_ESCALATION)
        if first is None:
            return self._not_open(event)
        if first:
            self._add(agent, ESCALATION, agent.params.escalation_points, now)
        return None

    def _mark_once(self, agent: AgentState, event: Event, bit: int) -> bool | None:
        """Mark a once-per-call impulse on the event's call.

        Returns True the first time, False when that call already counted it, and None when the
        call is neither open nor the agent's last one (post-call analytics may still arrive for
        the call that just ended).
        """
        call = agent.call
        if call is not None and call.call_id == event.call_id:
            if call.flags & bit:
                return False
            call.flags |= bit
            return True
        if event.call_id == agent.last_call_id:
            if agent.last_call_flags & bit:
                return False
            agent.last_call_flags |= bit
            return True
        return None

    def _on_sentiment(self, agent: AgentState, event: Event, now: float):
        fields = event.fields
        if fields["speaker"] != "customer":
            # The agent's own sentiment is emotion inference on an employee: never a factor.
            return IGNORED
        call = agent.call
        is_open = call is not None and call.call_id == event.call_id
        if not is_open and event.call_id != agent.last_call_id:
            return self._not_open(event)
        score = fields["score"]
        params = agent.params
        z = sentiment_deviation(params, score, agent.sentiment_mean, agent.sentiment_dev, agent.sentiment_calls)
        hostile = score <= params.hostile_sentiment_max
        if z or hostile:
            self._advance(agent, now)
        if z:
            points = negative_sentiment_impulse(params, z, fields.get("window_s"))
            elevated_before = agent.elevated_since
            if agent.add(NEGATIVE_SENTIMENT, points, now):
                self.policy.trigger(agent, TRIGGER_RED, now)
            if agent.elevated_since is not elevated_before and agent.elevated_since is not None:
                self.policy.on_elevated(agent)

        if is_open:
            call.sentiment_sum += score
            call.sentiment_count += 1
        if hostile:
            self._hostile_call(agent, event.call_id, now)
        return None

    def _on_interaction_flag(self, agent: AgentState, event: Event, now: float):
        self._advance(agent, now)
        fields = event.fields
        if fields["speaker"] != "customer":
            return IGNORED
        flag = fields["flag"]
        if flag in ("escalation_request", "supervisor_request"):
            return self._escalate(agent, event, now)

        bit, points = (FLAG_ABUSE, agent.params.abuse_points) if flag == "abuse" else (FLAG_THREAT, agent.params.threat_points)
        first = self._mark_once(agent, event, bit)
        if first is None:
            return self._not_open(event)
        if not first:
            return None
        self._add(agent, HOSTILITY, points, now)
        self._hostile_call(agent, event.call_id, now)
        return None

    def _hostile_call(self, agent: AgentState, call_id: str | None, now: float) -> None:
        if any(seen_call == call_id for _, seen_call in agent.hostile_times):
            return
        params = agent.params
        recent = tuple(item for item in agent.hostile_times if now - item[0] <= params.hostile_streak_window_s)
        recent += ((now, call_id),)
        if len(recent) >= params.hostile_streak_calls:
            # Keep the calls, so the same streak does not trigger again, but mark it as used.
            agent.hostile_times = tuple((-math.inf, seen_call) for _, seen_call in recent)
            self.policy.trigger(agent, TRIGGER_HOSTILE_STREAK, now)
        else:
            agent.hostile_times = recent

    def _on_audio_features(self, agent: AgentState, event: Event, now: float):
        self._advance(agent, now)
        fields = event.fields
        if fields["channel"] != "customer":
            # No factor is computed from the agent's own voice (see privacy.agent_voice_factors).
            return IGNORED
        if self._open_call(agent, event) is None and event.call_id != agent.last_call_id:
            return self._not_open(event)
        params = agent.params
        team_baseline = self._team_audio.get(agent.team_id)
        if team_baseline is None:
            team_baseline = self._team_audio[agent.team_id] = AudioBaseline.from_prior()
        if agent.audio is None:
            agent.audio = AudioBaseline.from_prior()

        # Judge the window against the history before it, then let it join the history.
        minutes = fields["window_s"] / 60.0
        intensity = customer_intensity(fields, agent.audio, team_baseline, params.audio_baseline)
        if intensity is not None:
            score = min(intensity.score, params.audio_max_z)
            self._add(agent, CUSTOMER_INTENSITY, params.customer_intensity_points_per_min * minutes * score, now)
        overlap = talk_over(fields, agent.audio, team_baseline, params.audio_baseline)
        if overlap is not None:
            score = min(overlap.score, params.audio_max_z)
            self._add(agent, TALK_OVER, params.talk_over_points_per_min * minutes * score, now)
        agent.audio.update(fields, params.audio_baseline)
        team_baseline.update(fields, params.audio_baseline)
        return None

    # Break actions ----------------------------------------------------------------------------

    def _on_break_action(self, agent: AgentState, event: Event, now: float):
        self._advance(agent, now)
        fields = event.fields
        action = fields["action"]
        if action == "request":
            self.policy.request(agent, now, event.event_id)
            return None

        break_id = fields["break_id"]
        brk = self.policy.breaks.get(break_id)
        if brk is None:
            final = self.policy.ended.get(break_id)
            if final is None:
                return REASON_UNKNOWN_BREAK, (
                    f"{action} for break {break_id!r} of agent {event.agent_id!r}, but no such break is known "
                    f"(ended breaks are remembered for {self._history_s:g} s); check the break_id against the "
                    "recovery-breaks events, or send 'request' without a break_id to ask for a new break"
                )
            if _ACTION_FINAL_STATUS.get(action) == final:
                return None
            return REASON_INVALID_ACTION, (
                f"break {break_id!r} of agent {event.agent_id!r} has ended ({final}), so '{action}' cannot apply; "
                "send 'request' for a new one"
            )
        if brk.agent_id != event.agent_id:
            return REASON_INVALID_ACTION, (
                f"break {break_id!r} belongs to agent {brk.agent_id!r}, not {event.agent_id!r}; "
                "send the action with the break's own agent_id"
            )
        error = self.policy.act(brk, agent, action, fields["actor"], fields.get("note"), now)
        if error is not None:
            return REASON_INVALID_ACTION, error
        return None

    # Output -----------------------------------------------------------------------------------

    def snapshots(self, now: float, interval_s: float) -> list[dict]:
        """Return agent-load snapshots due at ``now``: at most one per agent per ``interval_s``.

        An agent gets one when something changed since its last snapshot or its load moved by a
        point or more. Reading a snapshot never changes the agent's state.
        """
        due = []
        for agent in self.agents.values():
            if agent.snapshot_at is not None and now - agent.snapshot_at < interval_s:
                continue
            at = max(now, agent.t)
            load = agent.load_at(at)
            if not agent.dirty and abs(load - agent.snapshot_load) < 1.0:
                continue
            agent.snapshot_at = now
            agent.snapshot_load = load
            agent.dirty = False
            due.append(snapshot_of(agent, at))
        return due


def snapshot_of(agent: AgentState, at: float) -> dict:
    """Return the agent-load snapshot of ``agent`` at event time ``at`` (≥ the agent's own time)."""
    contributions = agent.contributions_at(at)
    load = sum(contributions)
    # Between the agent's own time and ``at`` the load only drains, unless the agent is on a call
    # and time_since_recovery fills it, so the level follows the same hysteresis rules here.
    level = agent.level
    params = agent.params
    if level == RED and load < params.red_exit:
        level = AMBER
    if level == AMBER and load < params.amber_exit:
        level = GREEN
    if level == GREEN and load >= params.amber:
        level = AMBER
    if level == AMBER and load >= params.red:
        level = RED
    return {
        "agent_id": agent.agent_id,
        "team_id": agent.team_id,
        "ts": format_ts(at),
        "load": round(load, 2),
        "level": LEVELS[level],
        "factors": {name: round(value, 2) for name, value in zip(FACTORS, contributions) if value > 0.0},
        "state": agent.state,
        "calls_since_break": agent.calls_since_break,
        "last_recovery_end": format_ts(agent.last_recovery_end) if agent.last_recovery_end is not None else None,
    }
