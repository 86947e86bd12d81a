"""The rolling load state of one agent.

Load is a reservoir per factor. An impulse of strain adds points to its factor, and every factor
drains exponentially at a rate set by what the agent is doing: hardly at all on a call, faster
after a call, fastest on a break. While the agent is on a call, the ``time_since_recovery``
factor also fills at a constant rate. Because all factors drain at the same rate, the split of
the load between factors is exact at every instant.

Draining is stored as one common ``scale``: factor ``i`` contributes ``raw[i] * scale`` points,
so advancing time multiplies one number instead of every factor. Time only moves forward here;
the engine orders events before they reach this class.
"""

from __future__ import annotations

import math

from features.call_factors import FACTORS, TIME_SINCE_RECOVERY
from streams.config import TeamParams

GREEN, AMBER, RED = 0, 1, 2
LEVELS = ("green", "amber", "red")

RECOVERY_STATES = frozenset(("break", "off_queue", "offline"))

_FACTOR_COUNT = len(FACTORS)
# Below this the load is reset to exactly zero, so long idle periods leave clean numbers.
_NEGLIGIBLE_LOAD = 1e-9
_MIN_SCALE = 1e-200


class CallState:
    """The open call of an agent: what the factors need to know about it until it ends."""

    __slots__ = (
        "call_id",
        "started_at",
        "hold_started_at",
        "sentiment_sum",
        "sentiment_count",
        "flags",
        "hostile",
    )

    def __init__(self, call_id: str, started_at: float):
        self.call_id = call_id
        self.started_at = started_at
        self.hold_started_at: float | None = None
        self.sentiment_sum = 0.0
        self.sentiment_count = 0
        # Bit set of the once-per-call impulses already counted (see the engine's FLAG_* bits).
        self.flags = 0
        self.hostile = False


class AgentState:
    """Everything agentload keeps about one agent, sized to stay well under 2 KiB.

    ``level`` follows the load with hysteresis; ``elevated_since`` is when the agent last went
    from green to amber or red, and ``None`` while green. Level changes inside a stretch of time
    are found analytically, so their times do not depend on how often time is advanced.
    """

    __slots__ = (
        "agent_id",
        "team_id",
        "params",
        "state",
        "state_since",
        "t",
        "scale",
        "raw",
        "raw_total",
        "level",
        "level_since",
        "elevated_since",
        "red_entered_at",
        "amber_s",
        "red_s",
        "peak_load",
        "calls",
        "calls_since_break",
        "last_recovery_end",
        "last_call_end",
        "last_call_id",
        "last_call_flags",
        "call_limit_armed",
        "call",
        "ht_log_mean",
        "ht_log_dev",
        "ht_calls",
        "sentiment_mean",
        "sentiment_dev",
        "sentiment_calls",
        "hostile_times",
        "break_id",
        "last_suggested_at",
        "pending_trigger",
        "breaks_suggested",
        "snapshot_at",
        "snapshot_load",
        "dirty",
        "audio",
    )

    def __init__(self, agent_id: str, team_id: str, params: TeamParams, now: float):
        self.agent_id = agent_id
        self.team_id = team_id
        self.params = params
        self.state = "available"
        self.state_since = now
        self.t = now
        self.scale = 1.0
        self.raw = [0.0] * _FACTOR_COUNT
        self.raw_total = 0.0
        self.level = GREEN
        self.level_since = now
        self.elevated_since: float | None = None
        self.red_entered_at: float | None = None
        self.amber_s = 0.0
        self.red_s = 0.0
        self.peak_load = 0.0
        self.calls = 0
        self.calls_since_break = 0
        self.last_recovery_end: float | None = None
        self.last_call_end: float | None = None
        # The call that ended last and its once-per-call impulses, for post-call analytics.
        self.last_call_id: str | None = None
        self.last_call_flags = 0
        # Whether a timer is pending to close an open call that outlives the handle-time limit.
        self.call_limit_armed = False
        self.call: CallState | None = None
        self.ht_log_mean = 0.0
        self.ht_log_dev = 0.0
        self.ht_calls = 0
        self.sentiment_mean = 0.0
        self.sentiment_dev = 0.0
        self.sentiment_calls = 0
        # (time, call_id) of the recent hostile calls, oldest first.
        self.hostile_times: tuple[tuple[float, str | None], ...] = ()
        self.break_id: str | None = None
        self.last_suggested_at: float | None = None
        self.pending_trigger: tuple[str, float] | None = None
        self.breaks_suggested = 0
        self.snapshot_at: float | None = None
        self.snapshot_load = 0.0
        self.dirty = True
        # Per-agent audio baseline, created on the first audio-features message.
        self.audio = None

    @property
    def load(self) -> float:
        return self.raw_total * self.scale

    def contributions(self) -> list[float]:
        """Return the points each factor contributes now, in :data:`FACTORS` order."""
        scale = self.scale
        return [value * scale for value in self.raw]

    def _rates(self, t_start: float, t_end: float) -> tuple[float, float, float]:
        """Return (end of the stretch from ``t_start``, decay rate per s, time_since_recovery fill per s)."""
        params = self.params
        state = self.state
        if state == "on_call":
            return t_end, params.decay_on_call_per_s, params.time_since_recovery_points_per_s
        if state == "available":
            gap_end = self.state_since + params.micro_gap_s
            if t_start < gap_end:
                return min(t_end, gap_end), params.decay_on_call_per_s, 0.0
            return t_end, params.decay_available_per_s, 0.0
        if state == "acw":
            return t_end, params.decay_acw_per_s, 0.0
        return t_end, params.decay_break_per_s, 0.0

    def advance(self, t_end: float) -> bool:
        """Advance the reservoirs to ``t_end``; return True if the agent entered red on the way.

        Red can be entered between events only on a call, as time_since_recovery fills.
        """
        entered_red = False
        if self.state == "on_call" and self.t < t_end:
            # The common case, one stretch on a call, without the general loop.
            params = self.params
            decay = params.decay_on_call_per_s
            fill = params.time_since_recovery_points_per_s
            dt = t_end - self.t
            # Nothing can cross a threshold while green and heading below amber.
            if (self.level or fill / decay >= params.amber) and self._track_levels(dt, decay, fill):
                entered_red = True
            factor = math.exp(-decay * dt)
            scale = self.scale * factor
            self.scale = scale
            if fill:
                added = fill / decay * (1.0 - factor) / scale
                self.raw[TIME_SINCE_RECOVERY] += added
                self.raw_total += added
            self.t = t_end
        while self.t < t_end:
            stretch_end, decay, fill = self._rates(self.t, t_end)
            dt = stretch_end - self.t
            if (self.level or fill / decay >= self.params.amber) and self._track_levels(dt, decay, fill):
                entered_red = True

            factor = math.exp(-decay * dt)
            self.scale *= factor
            if fill:
                added = fill / decay * (1.0 - factor) / self.scale
                self.raw[TIME_SINCE_RECOVERY] += added
                self.raw_total += added
            self.t = stretch_end

        load = self.raw_total * self.scale
        if load > self.peak_load:
            self.peak_load = load
        if load < _NEGLIGIBLE_LOAD:
            self._reset_reservoirs()
        elif self.scale < _MIN_SCALE:
            self._renormalize()
        return entered_red

    def add(self, factor: int, points: float, now: float) -> bool:
        """Add ``points`` of strain to ``factor`` at ``now``; return True if the agent entered red.

        The caller has advanced the agent to ``now``.
        """
        if points <= 0.0:
            return False
        raw = points / self.scale
        self.raw[factor] += raw
        self.raw_total += raw
        self.dirty = True

        load = self.raw_total * self.scale
        if load > self.peak_load:
            self.peak_load = load
        params = self.params
        if self.level == GREEN and load >= params.amber:
            self._set_level(AMBER, now)
        if self.level == AMBER and load >= params.red:
            self._set_level(RED, now)
            return True
        return False

    def set_state(self, state: str, now: float) -> None:
        self.state = state
        self.state_since = now
        self.dirty = True

    def close_level_time(self, now: float) -> None:
        """Count the time spent at the current level up to ``now`` into ``amber_s``/``red_s``."""
        self._count_level_time(now)
        self.level_since = now

    def _track_levels(self, dt: float, decay: float, fill: float) -> bool:
        """Apply every threshold crossing inside the next ``dt`` seconds; return True on entering red."""
        params = self.params
        start = self.t
        load = self.raw_total * self.scale
        target = fill / decay
        entered_red = False
        while True:
            if target < load:
                threshold = params.red_exit if self.level == RED else params.amber_exit
                if self.level == GREEN or threshold <= target:
                    return entered_red
                new_level = self.level - 1
            else:
                threshold = params.amber if self.level == GREEN else params.red
                if self.level == RED or threshold >= target or target == load:
                    return entered_red
                new_level = self.level + 1
            # L(τ) = target + (load - target) e^(-decay τ): solve L(τ) = threshold.
            ratio = (threshold - target) / (load - target)
            if ratio <= 0.0:
                return entered_red
            tau = -math.log(ratio) / decay if ratio < 1.0 else 0.0
            if tau > dt:
                return entered_red
            self._set_level(new_level, start + tau)
            if new_level == RED:
                entered_red = True

    def _set_level(self, level: int, now: float) -> None:
        self._count_level_time(now)
        if level == RED:
            self.red_entered_at = now
        if self.level == GREEN and level > GREEN:
            self.elevated_since = now
        elif level == GREEN:
            self.elevated_since = None
        self.level = level
        self.level_since = now
        self.dirty = True

    def _count_level_time(self, now: float) -> None:
        if self.level == AMBER:
            self.amber_s += now - self.level_since
        elif self.level == RED:
            self.red_s += now - self.level_since

    def _reset_reservoirs(self) -> None:
        self.scale = 1.0
        self.raw = [0.0] * _FACTOR_COUNT
        self.raw_total = 0.0

    def _renormalize(self) -> None:
        scale = self.scale
        self.raw = [value * scale for value in self.raw]
        self.raw_total *= scale
        self.scale = 1.0

    def load_at(self, t: float) -> float:
        """Return what the load will be at ``t`` (≥ ``self.t``) without changing the state."""
        scale, added = self._project(t)
        return (self.raw_total + added) * scale

    def contributions_at(self, t: float) -> list[float]:
        """Return each factor's points at ``t`` (≥ ``self.t``) without changing the state.

        Snapshots use this, so that how often they are taken never alters the load's own path.
        """
        scale, added = self._project(t)
        values = [value * scale for value in self.raw]
        values[TIME_SINCE_RECOVERY] += added * scale
        return values

    def _project(self, t: float) -> tuple[float, float]:
        t_now = self.t
        scale = self.scale
        added = 0.0
        while t_now < t:
            stretch_end, decay, fill = self._rates(t_now, t)
            factor = math.exp(-decay * (stretch_end - t_now))
            scale *= factor
            if fill:
                added += fill / decay * (1.0 - factor) / scale
            t_now = stretch_end
        return scale, added
