"""A seeded contact-center floor simulator: the default source of ``agentload run``.

Teams of agents log in, take calls with log-normal handle times separated by exponential gaps,
put customers on hold, transfer and escalate some calls, and take their scheduled breaks. A share
of calls is hostile: the customer's sentiment runs strongly negative and some customers are
flagged as abusive or threatening. Agents respond to recovery-break offers (most accept, some decline)
and take the break for its recommended length.

The same seed and start time give the same events, as long as the simulator receives the same
break offers at the same event times. Nothing here reads a clock: the caller says how far
simulated time has advanced.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

from streams.events import format_ts

# A point in an agent's script where it looks at its offers; never emitted. Agents decide when
# simulated time reaches the point, not when the previous event is generated, so an offer made
# in between is seen.
_DECISION = "_decision"

TEAM_NAMES = ("billing", "support", "retention", "collections", "sales", "claims", "onboarding", "technical")


def _team_name(index: int) -> str:
    name = TEAM_NAMES[index % len(TEAM_NAMES)]
    return name if index < len(TEAM_NAMES) else f"{name}-{index // len(TEAM_NAMES) + 1}"


@dataclass(frozen=True)
class SimulatorSettings:
    """The shape of the simulated floor. Times are in seconds of simulated time."""

    agents: int = 48
    team_size: int = 12
    seed: int = 7
    handle_time_median_s: float = 300.0
    handle_time_sigma: float = 0.5
    # Mean idle gap between an agent's calls; short gaps make a busy floor.
    call_gap_mean_s: float = 40.0
    hostile_share: float = 0.08
    abuse_share_of_hostile: float = 0.5
    threat_share_of_hostile: float = 0.1
    hold_share: float = 0.15
    transfer_share: float = 0.04
    sentiment_every_s: float = 20.0
    acw_min_s: float = 20.0
    acw_max_s: float = 60.0
    scheduled_break_every_s: float = 2 * 3600.0
    scheduled_break_s: float = 15 * 60.0
    accept_share: float = 0.8
    # False leaves every offer to the floor view and the agent view to answer.
    answer_offers: bool = True


@dataclass
class _Offer:
    break_id: str
    offered_at: float
    expires_at: float
    recommended_break_s: float


class FloorSimulator:
    """Generates call events for a floor of agents, in event-time order.

    Usage::

        simulator = FloorSimulator(SimulatorSettings(agents=24), start_ts=0.0)
        for event in simulator.events_until(600.0):
            ...  # canonical call-events and break-actions as JSON objects
    """

    def __init__(self, settings: SimulatorSettings, start_ts: float):
        self.settings = settings
        self.start_ts = start_ts
        self._random = random.Random(settings.seed)
        self.agent_ids = [f"agent-{index + 1:03d}" for index in range(settings.agents)]
        self.team_of = {
            agent_id: _team_name(index // settings.team_size) for index, agent_id in enumerate(self.agent_ids)
        }
        self._offers: dict[str, _Offer] = {}
        self._heap: list[tuple[float, int, int, dict]] = []
        self._scripts: list[Iterator[dict]] = []
        self._seq = 0
        for index, agent_id in enumerate(self.agent_ids):
            agent_random = random.Random(self._random.getrandbits(64))
            script = self._agent_script(agent_id, agent_random)
            self._scripts.append(script)
            self._push(index, next(script))

    def events_until(self, t: float) -> list[dict]:
        """Return the events with event time up to ``t``, oldest first."""
        events = []
        heap = self._heap
        while heap and heap[0][0] <= t:
            _, _, index, event = heapq.heappop(heap)
            if event["type"] != _DECISION:
                events.append(event)
            self._push(index, next(self._scripts[index]))
        return events

    def offer(self, agent_id: str, break_id: str, offered_at: float, expires_at: float, recommended_break_s: float) -> None:
        """Tell the agent of a recovery-break offer; the agent responds at its next decision point."""
        self._offers[agent_id] = _Offer(break_id, offered_at, expires_at, recommended_break_s)

    def withdraw(self, agent_id: str, break_id: str) -> None:
        """Forget an offer that ended (expired, cancelled) before the agent responded."""
        offer = self._offers.get(agent_id)
        if offer is not None and offer.break_id == break_id:
            del self._offers[agent_id]

    def _push(self, index: int, event: dict) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (event["_t"], self._seq, index, event))

    def _event(self, agent_id: str, t: float, event_type: str, suffix: str, **fields) -> dict:
        event = {
            "event_id": f"sim-{agent_id}-{suffix}",
            "type": event_type,
            "agent_id": agent_id,
            "team_id": self.team_of[agent_id],
            "ts": format_ts(t),
            "source": "simulator",
            **fields,
        }
        event["_t"] = t
        return event

    def _agent_script(self, agent_id: str, rng: random.Random) -> Iterator[dict]:
        settings = self.settings
        team_id = self.team_of[agent_id]
        # Agents differ: some take longer calls, some get more hostile customers.
        pace = math.exp(rng.gauss(0.0, 0.2))
        hostile_share = min(0.9, settings.hostile_share * math.exp(rng.gauss(0.0, 0.5)))
        t = self.start_ts + rng.uniform(0.0, 120.0)
        calls = 0
        step = 0

        def ev(event_type: str, **fields) -> dict:
            nonlocal step
            step += 1
            return self._event(agent_id, t, event_type, f"{step}", **fields)

        yield ev("agent_state", state="available")
        next_break_at = t + rng.uniform(0.6, 1.1) * settings.scheduled_break_every_s

        while True:
            t += rng.expovariate(1.0 / settings.call_gap_mean_s)
            yield {"type": _DECISION, "_t": t}
            offer = self._offers.pop(agent_id, None) if settings.answer_offers else None
            if offer is not None and t <= offer.expires_at:
                t += rng.uniform(5.0, 60.0)
                if t > offer.expires_at:
                    # The agent thought about it too long; the offer expired meanwhile.
                    continue
                if rng.random() < settings.accept_share:
                    yield ev("break_action", break_id=offer.break_id, action="accept", actor="agent")
                    t += rng.uniform(5.0, 30.0)
                    yield ev("agent_state", state="break", reason="RecoveryBreak")
                    t += offer.recommended_break_s * rng.uniform(0.9, 1.1)
                    yield ev("agent_state", state="available")
                    next_break_at = max(next_break_at, t + 0.5 * settings.scheduled_break_every_s)
                else:
                    yield ev("break_action", break_id=offer.break_id, action="decline", actor="agent")
                continue

            if t >= next_break_at:
                yield ev("agent_state", state="break", reason="Scheduled")
                t += settings.scheduled_break_s * rng.uniform(0.9, 1.2)
                yield ev("agent_state", state="available")
                next_break_at = t + settings.scheduled_break_every_s * rng.uniform(0.9, 1.1)
                continue

            calls += 1
            call_id = f"{agent_id}-c{calls}"
            hostile = rng.random() < hostile_share
            handle_s = settings.handle_time_median_s * pace * math.exp(rng.gauss(0.0, settings.handle_time_sigma))
            if hostile:
                handle_s *= 1.3
            end = t + handle_s

            yield ev("call_started", call_id=call_id, direction="inbound", queue=team_id)
            yield from self._call_middle(ev, rng, call_id, hostile, t, end)
            t = end
            disposition = "resolved"
            roll = rng.random()
            if roll < settings.transfer_share:
                disposition = "transferred"
            elif hostile and roll < 0.25:
                disposition = "escalated"
            yield ev("call_ended", call_id=call_id, disposition=disposition)
            yield ev("agent_state", state="acw")
            t += rng.uniform(settings.acw_min_s, settings.acw_max_s)
            yield ev("agent_state", state="available")

    def _call_middle(self, ev, rng: random.Random, call_id: str, hostile: bool, start: float, end: float):
        """Yield the sentiment events, flags and hold events of one call between ``start`` and ``end``."""
        settings = self.settings
        moments: list[tuple[float, str, dict]] = []
        t = start + settings.sentiment_every_s
        while t < end:
            mean = -0.55 if hostile else 0.2
            score = max(-1.0, min(1.0, rng.gauss(mean, 0.25)))
            moments.append((t, "sentiment", {"speaker": "customer", "score": round(score, 2), "window_s": settings.sentiment_every_s}))
            t += settings.sentiment_every_s
        if hostile and rng.random() < settings.abuse_share_of_hostile:
            moments.append((rng.uniform(start, end), "interaction_flag", {"flag": "abuse", "speaker": "customer"}))
        if hostile and rng.random() < settings.threat_share_of_hostile:
            moments.append((rng.uniform(start, end), "interaction_flag", {"flag": "threat", "speaker": "customer"}))
        if rng.random() < settings.hold_share:
            hold_start = start + (end - start) * rng.uniform(0.3, 0.6)
            hold_end = min(end - 1.0, hold_start + rng.lognormvariate(math.log(45.0), 0.5))
            if hold_end > hold_start:
                moments.append((hold_start, "hold_started", {}))
                moments.append((hold_end, "hold_ended", {}))
        moments.sort(key=lambda moment: moment[0])
        for moment_t, event_type, fields in moments:
            event = ev(event_type, call_id=call_id, **fields)
            event["ts"] = format_ts(moment_t)
            event["_t"] = moment_t
            yield event
