"""Rolling per-agent baselines of customer audio features, and the evidence judged against them.

A baseline is what an agent's customers usually sound like: for each tracked feature, a running
median and a running mean absolute deviation (MAD) around it. The median is a stochastic
approximation (each window moves it a step towards the new value, scaled by the current MAD), so
the whole baseline is a dozen floats whatever the history. Until an agent has ``min_windows``
windows of a feature, its baseline is blended with the team's, in proportion to its history.

Only customer windows with speech (``rms_dbfs`` defined) update a baseline or yield evidence: a
silent window says nothing about how the customer sounds, and its onset rate of 0 would drag the
baseline down. Nothing here reads a clock; every update is one window of data.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field

# Pitch is tracked in semitones above 100 Hz, so that a step or spread means the same for low and
# high voices.
TRACKED_FEATURES = ("rms_dbfs", "pitch_st", "onset_rate_hz", "overlap_ratio")
INTENSITY_FEATURES = ("rms_dbfs", "pitch_st", "onset_rate_hz")
PITCH_REFERENCE_HZ = 100.0

# Starting team prior (median, MAD) for telephone speech, to be replaced by the team's own data as
# it accrues. These are rough typical values, not measured on a corpus.
DEFAULT_PRIOR = {
    "rms_dbfs": (-26.0, 4.0),
    "pitch_st": (8.0, 3.0),
    "onset_rate_hz": (3.0, 1.0),
    "overlap_ratio": (0.0, 0.05),
}
# Smallest spread a z-score divides by, so that a very steady baseline does not turn a small change
# into a large score.
MIN_SCALE = {"rms_dbfs": 1.5, "pitch_st": 1.0, "onset_rate_hz": 0.5, "overlap_ratio": 0.05}
# The standard deviation of a normal distribution is sqrt(pi / 2) times its mean absolute deviation.
SD_PER_MAD = math.sqrt(math.pi / 2.0)
# A stochastic-approximation median converges fastest with a gain of 1 / (2 * density at the
# median), which for a normal distribution is pi / 2 times the MAD.
MEDIAN_GAIN_PER_MAD = math.pi / 2.0

_SLOTS_PER_FEATURE = 3


@dataclass(frozen=True, slots=True)
class BaselineConfig:
    """How fast baselines follow new data and how much history an agent needs.

    ``half_life_windows`` is the number of windows after which a window's weight in the MAD has
    halved, and the smallest step of the median. ``min_windows`` is the history, per feature, from
    which an agent's baseline is used without the team prior.
    """

    half_life_windows: float = 2000.0
    min_windows: int = 300

    def __post_init__(self) -> None:
        if not math.isfinite(self.half_life_windows) or self.half_life_windows < 1.0:
            raise ValueError(f"half_life_windows={self.half_life_windows!r} must be a number of windows >= 1")
        if isinstance(self.min_windows, bool) or not isinstance(self.min_windows, int) or self.min_windows < 1:
            raise ValueError(f"min_windows={self.min_windows!r} must be a whole number of windows >= 1")

    @property
    def smallest_step(self) -> float:
        return 1.0 - 0.5 ** (1.0 / self.half_life_windows)


@dataclass(frozen=True, slots=True)
class Evidence:
    """A non-negative z-like score and the per-feature scores it came from."""

    score: float
    detail: dict[str, float] = field(default_factory=dict)


class AudioBaseline:
    """Running median, MAD and window count of each tracked customer feature.

    Stored as one ``array('d')`` of 12 floats (about 160 bytes with the object), which
    :meth:`to_list` and :meth:`from_list` turn into JSON-friendly state for a table.

    Examples
    --------
    >>> team = AudioBaseline.from_prior()
    >>> agent = AudioBaseline.from_prior()
    >>> evidence = customer_intensity(message, agent, team)
    >>> agent.update(message)
    >>> team.update(message)
    """

    __slots__ = ("_state",)

    def __init__(self, state: array):
        self._state = state

    @classmethod
    def from_prior(cls, prior: Mapping[str, tuple[float, float]] = DEFAULT_PRIOR) -> AudioBaseline:
        """Create a baseline with no history that starts at ``prior`` (median, MAD per feature)."""
        state = array("d")
        for name in TRACKED_FEATURES:
            median, mad = prior[name]
            if not (math.isfinite(median) and math.isfinite(mad) and mad > 0.0):
                raise ValueError(f"prior for {name} is ({median!r}, {mad!r}); send a finite median and a MAD > 0")
            state.extend((median, mad, 0.0))
        return cls(state)

    @classmethod
    def from_list(cls, values: list[float]) -> AudioBaseline:
        """Restore a baseline saved with :meth:`to_list`."""
        expected = len(TRACKED_FEATURES) * _SLOTS_PER_FEATURE
        if len(values) != expected or not all(math.isfinite(value) for value in values):
            raise ValueError(f"a saved baseline is {expected} finite numbers, not {values!r}")
        return cls(array("d", values))

    def to_list(self) -> list[float]:
        """Return the state as a list of floats for storage."""
        return self._state.tolist()

    def median(self, name: str) -> float:
        """Running median of a tracked feature (pitch as ``pitch_st``, semitones above 100 Hz)."""
        return self._state[_offset(name)]

    def mad(self, name: str) -> float:
        """Running mean absolute deviation of a tracked feature around its median."""
        return self._state[_offset(name) + 1]

    def windows(self, name: str) -> int:
        """Number of windows in which the feature was defined and counted."""
        return int(self._state[_offset(name) + 2])

    def update(self, values: Mapping[str, object], config: BaselineConfig = BaselineConfig()) -> None:
        """Add one customer window's features; windows without speech change nothing."""
        for name, value in _tracked_values(values).items():
            offset = _offset(name)
            median, mad, count = self._state[offset : offset + 3]
            step = max(config.smallest_step, 1.0 / (count + 1.0))
            deviation = value - median
            self._state[offset] = median + step * MEDIAN_GAIN_PER_MAD * mad * _sign(deviation)
            self._state[offset + 1] = mad + step * (abs(deviation) - mad)
            self._state[offset + 2] = count + 1.0

    def expected(self, name: str, team: AudioBaseline, config: BaselineConfig = BaselineConfig()) -> tuple[float, float]:
        """Return the blended (median, scale) of a feature, the scale as a standard deviation.

        The agent's own values weigh ``windows / min_windows`` of the blend, the team's the rest.
        """
        weight = min(self.windows(name) / config.min_windows, 1.0)
        median = weight * self.median(name) + (1.0 - weight) * team.median(name)
        mad = weight * self.mad(name) + (1.0 - weight) * team.mad(name)
        return median, max(SD_PER_MAD * mad, MIN_SCALE[name])


def customer_intensity(
    values: Mapping[str, object], agent: AudioBaseline, team: AudioBaseline, config: BaselineConfig = BaselineConfig()
) -> Evidence | None:
    """Score how far the customer's loudness, pitch and onset rate are above the agent's usual customers.

    Each defined feature scores ``max(0, (value - median) / scale)``; the score is their mean.
    Returns ``None`` for a window without customer speech.
    """
    return _evidence(values, INTENSITY_FEATURES, agent, team, config)


def talk_over(
    values: Mapping[str, object], agent: AudioBaseline, team: AudioBaseline, config: BaselineConfig = BaselineConfig()
) -> Evidence | None:
    """Score how far the window's overlap ratio is above the agent's usual calls.

    Returns ``None`` when the window has no customer speech or no ``overlap_ratio``.
    """
    return _evidence(values, ("overlap_ratio",), agent, team, config)


def _evidence(
    values: Mapping[str, object],
    names: tuple[str, ...],
    agent: AudioBaseline,
    team: AudioBaseline,
    config: BaselineConfig,
) -> Evidence | None:
    tracked = _tracked_values(values)
    detail = {}
    for name in names:
        if name in tracked:
            median, scale = agent.expected(name, team, config)
            detail[name] = max(0.0, (tracked[name] - median) / scale)
    if not detail:
        return None
    return Evidence(score=sum(detail.values()) / len(detail), detail=detail)


def _tracked_values(values: Mapping[str, object]) -> dict[str, float]:
    channel = values.get("channel", "customer")
    if channel != "customer":
        raise ValueError(f"baselines track customer windows only, not channel {channel!r}")
    if _number(values.get("rms_dbfs")) is None:
        return {}

    tracked = {}
    for name in ("rms_dbfs", "onset_rate_hz", "overlap_ratio"):
        value = _number(values.get(name))
        if value is not None:
            tracked[name] = value
    pitch_hz = _number(values.get("pitch_hz"))
    if pitch_hz is not None and pitch_hz > 0.0:
        tracked["pitch_st"] = 12.0 * math.log2(pitch_hz / PITCH_REFERENCE_HZ)
    return tracked


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _sign(value: float) -> float:
    return (value > 0.0) - (value < 0.0)


def _offset(name: str) -> int:
    return TRACKED_FEATURES.index(name) * _SLOTS_PER_FEATURE
