"""The recovery-break policy: when to offer a break, to whom, and how each break moves on.

A trigger (entering red, a hostile streak, amber held too long, or the agent's own request)
becomes a break offer unless the agent is in cooldown or already has a break open. A trigger met
mid-call waits for the call to end. A team may have only a share of its logged-in agents on
recovery break at once. Beyond it the break is ``deferred``, and it is offered when room frees.

Every break moves through a small state machine driven by break actions, agent states and
timers::

    suggested ──accept──▶ accepted ──start──▶ started ──complete──▶ completed
        │  ▲                  │                   │
        │  └──room frees── deferred               └──▶ cancelled (cancel, agent offline)
        └──▶ declined, expired (no answer), cancelled

Every non-final state has a timer, so no break waits forever. Transitions are idempotent: an
action that finds the break already where it would move it changes nothing.
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from collections.abc import Callable

from features.call_factors import FACTOR_DETAILS, FACTORS
from streams.config import TeamParams
from streams.state import LEVELS, RECOVERY_STATES, RED, AgentState

SUGGESTED = "suggested"
DEFERRED = "deferred"
ACCEPTED = "accepted"
STARTED = "started"
DECLINED = "declined"
EXPIRED = "expired"
COMPLETED = "completed"
CANCELLED = "cancelled"

OPEN_STATUSES = frozenset((SUGGESTED, DEFERRED, ACCEPTED, STARTED))
# Breaks that hold one of the team's places on recovery break.
OCCUPYING_STATUSES = frozenset((SUGGESTED, ACCEPTED, STARTED))

TRIGGER_RED = "red"
TRIGGER_HOSTILE_STREAK = "hostile_streak"
TRIGGER_AMBER_HELD = "amber_held"
TRIGGER_AGENT_REQUEST = "agent_request"

TRIGGER_WORDS = {
    TRIGGER_RED: "load entered red",
    TRIGGER_HOSTILE_STREAK: "hostile calls in a row",
    TRIGGER_AMBER_HELD: "amber held without recovery",
    TRIGGER_AGENT_REQUEST: "the agent asked for a break",
}

# Timer kinds.
TIMER_OFFER = "offer_expiry"
TIMER_DEFERRED = "deferred_max"
TIMER_ACCEPTED = "accepted_start"
TIMER_BREAK_END = "break_end"
TIMER_AMBER_HOLD = "amber_hold"
TIMER_RED_RETRY = "red_retry"
# Timers keyed by agent_id; the others are keyed by break_id.
AGENT_TIMERS = frozenset((TIMER_AMBER_HOLD, TIMER_RED_RETRY))

# Actor of the transitions that agentload makes on its own (timers, derived from agent states).
SYSTEM_ACTOR = "agentload"


class Break:
    """One recovery break, from its suggestion to its end."""

    __slots__ = (
        "break_id",
        "agent_id",
        "team_id",
        "status",
        "trigger",
        "created_at",
        "seq",
        "recommended_break_s",
        "offer_expires_at",
        "started_at",
        "owns_state",
    )

    def __init__(self, break_id: str, agent_id: str, team_id: str, trigger: str, created_at: float):
        self.break_id = break_id
        self.agent_id = agent_id
        self.team_id = team_id
        self.status = SUGGESTED
        self.trigger = trigger
        self.created_at = created_at
        self.seq = 0
        self.recommended_break_s = 0.0
        self.offer_expires_at: float | None = None
        self.started_at: float | None = None
        # True when starting the break put the agent in the break state, rather than the ACD.
        self.owns_state = False


class Transition:
    """One break lifecycle transition, as it will be published on ``recovery-breaks``."""

    __slots__ = (
        "event_id",
        "type",
        "time",
        "break_id",
        "agent_id",
        "team_id",
        "level",
        "load",
        "recommended_break_s",
        "offer_expires_at",
        "reasons",
        "reason_code",
        "trigger",
        "actor",
        "note",
    )

    def __init__(self, brk: Break, agent: AgentState, transition_type: str, time: float, actor: str, note: str | None):
        brk.seq += 1
        self.event_id = f"{brk.break_id}-{brk.seq}-{transition_type}"
        self.type = transition_type
        self.time = time
        self.break_id = brk.break_id
        self.agent_id = brk.agent_id
        self.team_id = brk.team_id
        self.level = LEVELS[agent.level]
        self.load = agent.load
        self.recommended_break_s = brk.recommended_break_s
        self.offer_expires_at = brk.offer_expires_at if transition_type == SUGGESTED else None
        self.reasons = reasons_for(agent)
        self.reason_code = agent.params.reason_code
        self.trigger = brk.trigger
        self.actor = actor
        self.note = note


def reasons_for(agent: AgentState) -> list[dict]:
    """Return the factors behind the agent's load, largest first, with shares that sum to exactly 1."""
    contributions = agent.contributions()
    total = sum(contributions)
    if total <= 0.0:
        return []
    ranked = sorted(
        ((value, index) for index, value in enumerate(contributions) if value > 0.0),
        key=lambda item: (-item[0], item[1]),
    )
    reasons = [
        {
            "factor": FACTORS[index],
            "share": round(value / total, 3),
            "detail": f"{FACTOR_DETAILS[index]}: {value:.1f} of {total:.1f} load points",
        }
        for value, index in ranked
    ]
    # Put the rounding remainder on the largest share so the shares sum to exactly 1.
    remainder = round(1.0 - sum(reason["share"] for reason in reasons[1:]), 3)
    reasons[0]["share"] = remainder
    return reasons


def recommended_break_s(params: TeamParams, load: float) -> float:
    """Return the break, in whole minutes, that drains ``load`` to green at the break rate."""
    if load <= params.amber_exit:
        seconds = 0.0
    else:
        target = max(params.amber_exit, 1e-9)
        seconds = math.log(load / target) / params.decay_break_per_s
    minutes = math.ceil(seconds / 60.0 - 1e-9)
    return min(max(minutes * 60.0, params.min_break_s), params.max_break_s)


def make_break_id(agent_id: str, trigger: str, time: float) -> str:
    """Return a break id that the same trigger at the same event time always gets again."""
    digest = hashlib.sha1(f"{agent_id}\x1f{trigger}\x1f{time!r}".encode()).hexdigest()
    return f"brk-{digest[:20]}"


class TeamState:
    """A team's logged-in agents, its breaks holding a place, and its queue of deferred breaks."""

    __slots__ = ("team_id", "logged_in", "occupying", "deferred")

    def __init__(self, team_id: str):
        self.team_id = team_id
        self.logged_in = 0
        self.occupying = 0
        self.deferred: deque[str] = deque()

    def capacity(self, params: TeamParams) -> int:
        return max(params.min_concurrent_breaks, math.floor(params.team_break_share * self.logged_in + 1e-9))


class BreakPolicy:
    """Triggers, gating and the break lifecycle over the agents of one engine.

    ``schedule(deadline, kind, key, token)`` arms a timer that the engine fires back through
    :meth:`on_timer`; ``emit(transition)`` publishes a transition. The policy keeps no clock:
    every method gets the event time it acts at.
    """

    def __init__(
        self,
        agents: dict[str, AgentState],
        teams: dict[str, TeamState],
        schedule: Callable[[float, str, str, object], None],
        emit: Callable[[Transition], None],
        change_state: Callable[[AgentState, str, float], object],
        recovered: Callable[[AgentState, float], None],
    ):
        self.agents = agents
        self.teams = teams
        self.breaks: dict[str, Break] = {}
        # Final status of ended breaks, kept for ``history_s`` so that late or repeated actions on
        # them get a precise error. Oldest first.
        self.ended: dict[str, str] = {}
        self._ended_order: deque[tuple[float, str]] = deque()
        self._schedule = schedule
        self._emit = emit
        # The engine's own state change and recovery bookkeeping, so a recovery break counts as
        # recovery exactly as an ACD-reported break does.
        self._change_state = change_state
        self._recovered = recovered
        # Suggestions not made because of the cooldown or an open break, for metrics and tests.
        self.suppressed = 0

    # Triggers ---------------------------------------------------------------------------------

    def trigger(self, agent: AgentState, trigger: str, now: float) -> None:
        """Offer a break for ``trigger`` unless the agent is in cooldown or has a break open."""
        if agent.state == "offline":
            # An agent who logged off is offered nothing; a trigger left from the last call is dropped.
            agent.pending_trigger = None
            return
        if agent.break_id is not None:
            self.suppressed += 1
            return
        if agent.state == "on_call":
            if agent.pending_trigger is None:
                agent.pending_trigger = (trigger, now)
            return
        if agent.last_suggested_at is not None and now - agent.last_suggested_at < agent.params.cooldown_s:
            self.suppressed += 1
            # A level that lasts past the cooldown is offered a break then, once.
            cooldown_end = agent.last_suggested_at + agent.params.cooldown_s
            if trigger == TRIGGER_AMBER_HELD and agent.elevated_since is not None:
                self._schedule(cooldown_end, TIMER_AMBER_HOLD, agent.agent_id, agent.elevated_since)
            elif trigger == TRIGGER_RED and agent.red_entered_at is not None:
                self._schedule(cooldown_end, TIMER_RED_RETRY, agent.agent_id, agent.red_entered_at)
            return
        self._create(agent, trigger, now, make_break_id(agent.agent_id, trigger, now))

    def deliver_pending(self, agent: AgentState, now: float) -> None:
        """Deliver a trigger met during the call that just ended."""
        pending = agent.pending_trigger
        if pending is None:
            return
        agent.pending_trigger = None
        self.trigger(agent, pending[0], now)

    def on_elevated(self, agent: AgentState) -> None:
        """Arm the amber-held timer for an agent who just left green."""
        since = agent.elevated_since
        if since is not None:
            self._schedule(since + agent.params.amber_hold_s, TIMER_AMBER_HOLD, agent.agent_id, since)

    def request(self, agent: AgentState, now: float, event_id: str) -> bool:
        """Open a break the agent asked for; return False if one is already open (nothing changes)."""
        if agent.break_id is not None:
            return False
        self._create(agent, TRIGGER_AGENT_REQUEST, now, make_break_id(agent.agent_id, event_id, now), actor="agent")
        return True

    def _create(self, agent: AgentState, trigger: str, now: float, break_id: str, actor: str = SYSTEM_ACTOR) -> None:
        brk = Break(break_id, agent.agent_id, agent.team_id, trigger, now)
        self.breaks[break_id] = brk
        agent.break_id = break_id
        agent.last_suggested_at = now
        agent.breaks_suggested += 1
        agent.dirty = True

        team = self.teams[agent.team_id]
        if team.occupying < team.capacity(agent.params):
            self._offer(brk, agent, now, actor=actor, note=None)
            return
        brk.status = DEFERRED
        brk.recommended_break_s = recommended_break_s(agent.params, agent.load)
        team.deferred.append(break_id)
        limit = team.capacity(agent.params)
        note = (
            f"team {team.team_id} is at its limit of {limit} {'agent' if limit == 1 else 'agents'} on recovery break "
            f"({agent.params.team_break_share:.0%} of {team.logged_in} logged in); offered when a place frees"
        )
        self._schedule(now + agent.params.deferred_max_s, TIMER_DEFERRED, break_id, brk.seq + 1)
        self._emit(Transition(brk, agent, DEFERRED, now, SYSTEM_ACTOR, note))

    def _offer(self, brk: Break, agent: AgentState, now: float, actor: str, note: str | None) -> None:
        brk.status = SUGGESTED
        brk.recommended_break_s = recommended_break_s(agent.params, agent.load)
        brk.offer_expires_at = now + agent.params.offer_expiry_s
        self.teams[brk.team_id].occupying += 1
        self._schedule(brk.offer_expires_at, TIMER_OFFER, brk.break_id, brk.seq + 1)
        self._emit(Transition(brk, agent, SUGGESTED, now, actor, note))

    # Actions ----------------------------------------------------------------------------------

    def act(self, brk: Break, agent: AgentState, action: str, actor: str, note: str | None, now: float) -> str | None:
        """Apply a break action; return an error sentence if it cannot apply to the break's state."""
        status = brk.status
        if action == "accept":
            if status in (ACCEPTED, STARTED):
                return None
            if status == SUGGESTED:
                self._move(brk, agent, ACCEPTED, now, actor, note)
                self._schedule(now + agent.params.accepted_start_timeout_s, TIMER_ACCEPTED, brk.break_id, brk.seq)
                return None
            if status == DEFERRED:
                # A person approving a deferred break overrides the team limit on purpose.
                self._take_out_of_queue(brk)
                self.teams[brk.team_id].occupying += 1
                self._move(brk, agent, ACCEPTED, now, actor, note)
                self._schedule(now + agent.params.accepted_start_timeout_s, TIMER_ACCEPTED, brk.break_id, brk.seq)
                return None
        elif action == "decline":
            if status == DECLINED:
                return None
            if status in (SUGGESTED, DEFERRED):
                self._finish(brk, agent, DECLINED, now, actor, note)
                return None
        elif action == "start":
            if status == STARTED:
                return None
            if status in (SUGGESTED, DEFERRED):
                self.act(brk, agent, "accept", actor, note, now)
                status = brk.status
            if status == ACCEPTED:
                self._start(brk, agent, now, actor, note)
                return None
        elif action == "complete":
            if status == COMPLETED:
                return None
            if status == STARTED:
                self._finish(brk, agent, COMPLETED, now, actor, note)
                return None
        elif action == "cancel":
            if status == CANCELLED:
                return None
            if status in OPEN_STATUSES:
                self._finish(brk, agent, CANCELLED, now, actor, note)
                return None
        return (
            f"break {brk.break_id} of agent {brk.agent_id} is {status}, so '{action}' cannot apply; "
            f"{_next_steps(status)}"
        )

    def on_agent_state(self, agent: AgentState, old_state: str, now: float) -> None:
        """Follow the break when the ACD reports the agent going on break, leaving it, or logging off."""
        if agent.break_id is None:
            return
        brk = self.breaks[agent.break_id]
        new_state = agent.state
        if new_state == "offline":
            self._finish(brk, agent, CANCELLED, now, "acd", "agent logged off")
        elif new_state == "break" and brk.status in (SUGGESTED, DEFERRED, ACCEPTED):
            self.act(brk, agent, "start", "acd", None, now)
        elif brk.status == STARTED and old_state in RECOVERY_STATES and new_state not in RECOVERY_STATES:
            self._finish(brk, agent, COMPLETED, now, "acd", None)

    def on_call_started(self, agent: AgentState, now: float) -> None:
        """End a running break the agent left to take a call."""
        if agent.break_id is None:
            return
        brk = self.breaks[agent.break_id]
        if brk.status == STARTED:
            self._finish(brk, agent, COMPLETED, now, "acd", "agent took a call")

    # Timers -----------------------------------------------------------------------------------

    def on_timer(self, kind: str, key: str, token: object, now: float) -> None:
        """Fire one timer; the engine has advanced the agent concerned to ``now``."""
        if kind == TIMER_AMBER_HOLD:
            agent = self.agents.get(key)
            if agent is not None and agent.elevated_since == token and agent.state not in RECOVERY_STATES:
                self.trigger(agent, TRIGGER_AMBER_HELD, now)
            return
        if kind == TIMER_RED_RETRY:
            agent = self.agents.get(key)
            if agent is not None and agent.level == RED and agent.red_entered_at == token:
                self.trigger(agent, TRIGGER_RED, now)
            return

        brk = self.breaks.get(key)
        # The token is the break's transition count when the timer was armed: any later
        # transition makes the timer stale.
        if brk is None or brk.seq != token:
            return
        agent = self.agents[brk.agent_id]
        if kind == TIMER_OFFER and brk.status == SUGGESTED:
            self._finish(brk, agent, EXPIRED, now, SYSTEM_ACTOR, "offer not answered in time")
        elif kind == TIMER_DEFERRED and brk.status == DEFERRED:
            self._finish(brk, agent, EXPIRED, now, SYSTEM_ACTOR, "no place on recovery break freed in time")
        elif kind == TIMER_ACCEPTED and brk.status == ACCEPTED:
            self._finish(brk, agent, EXPIRED, now, SYSTEM_ACTOR, "accepted break not started in time")
        elif kind == TIMER_BREAK_END and brk.status == STARTED:
            self._finish(brk, agent, COMPLETED, now, SYSTEM_ACTOR, "break ran its recommended length and grace")

    # Lifecycle internals ----------------------------------------------------------------------

    def _start(self, brk: Break, agent: AgentState, now: float, actor: str, note: str | None) -> None:
        brk.started_at = now
        self._move(brk, agent, STARTED, now, actor, note)
        if agent.state not in RECOVERY_STATES and agent.state != "on_call":
            self._change_state(agent, "break", now)
            brk.owns_state = True
        end = now + brk.recommended_break_s + agent.params.break_overrun_s
        self._schedule(end, TIMER_BREAK_END, brk.break_id, brk.seq)

    def _move(self, brk: Break, agent: AgentState, status: str, now: float, actor: str, note: str | None) -> None:
        brk.status = status
        agent.dirty = True
        self._emit(Transition(brk, agent, status, now, actor, note))

    def _finish(self, brk: Break, agent: AgentState, status: str, now: float, actor: str, note: str | None) -> None:
        previous = brk.status
        team = self.teams[brk.team_id]
        if previous == DEFERRED:
            self._take_out_of_queue(brk)
        was_running = previous == STARTED
        brk.status = status
        agent.break_id = None
        agent.dirty = True
        self._emit(Transition(brk, agent, status, now, actor, note))
        del self.breaks[brk.break_id]
        self.ended[brk.break_id] = status
        self._ended_order.append((now, brk.break_id))

        if was_running and status == COMPLETED:
            # A recovery break taken is a real recovery, however short its recommended length.
            self._recovered(agent, now)
        if was_running and brk.owns_state and agent.state == "break":
            # Only a break state this policy set is ended here. A break state the ACD reported ends
            # when the ACD reports the agent's next state.
            self._change_state(agent, "available", now)
        if previous in OCCUPYING_STATUSES:
            team.occupying -= 1
            self.offer_deferred(team, now)
        if agent.elevated_since is not None:
            # A break, taken or not, restarts the amber-held clock.
            agent.elevated_since = now
            self.on_elevated(agent)

    def offer_deferred(self, team: TeamState, now: float) -> None:
        """Offer the oldest deferred breaks of ``team`` while it has places free.

        An agent on a call keeps its place in the queue and is offered the break when the call
        ends, as any suggestion made mid-call is.
        """
        if not team.deferred:
            return
        for break_id in list(team.deferred):
            brk = self.breaks[break_id]
            agent = self.agents[brk.agent_id]
            if team.occupying >= team.capacity(agent.params):
                return
            if agent.state == "on_call":
                continue
            team.deferred.remove(break_id)
            self._offer(brk, agent, now, SYSTEM_ACTOR, "a place on recovery break freed")

    def rearm_amber_hold(self, agent: AgentState, now: float) -> None:
        """Arm the amber-held timer again for an agent back from a stretch too short to recover."""
        since = agent.elevated_since
        if since is not None:
            self._schedule(max(now, since + agent.params.amber_hold_s), TIMER_AMBER_HOLD, agent.agent_id, since)

    def forget_ended(self, before: float) -> None:
        """Drop the history of breaks that ended before ``before``."""
        order = self._ended_order
        while order and order[0][0] < before:
            _, break_id = order.popleft()
            self.ended.pop(break_id, None)

    def _take_out_of_queue(self, brk: Break) -> None:
        queue = self.teams[brk.team_id].deferred
        try:
            queue.remove(brk.break_id)
        except ValueError:
            pass


def _next_steps(status: str) -> str:
    if status in (DECLINED, EXPIRED, COMPLETED, CANCELLED):
        return "the break has ended; send 'request' for a new one"
    if status == ACCEPTED:
        return "send 'start', 'cancel', or wait for it to expire"
    if status == STARTED:
        return "send 'complete' or 'cancel'"
    return "send 'accept', 'decline' or 'cancel'"
