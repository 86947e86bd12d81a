"""Load factors and the per-agent baselines they are judged against.

A factor is one named source of strain. Each factor's contribution is a reservoir that an impulse
fills and time drains (see :mod:`streams.state`), so an alert's reasons are the exact split of the
load between factors. The functions here turn one piece of call evidence into an impulse, in load
points, and keep the rolling baselines: exponentially weighted means and mean absolute deviations,
blended with the team's prior until the agent has ``min_calls`` calls of history.
"""

from __future__ import annotations

import math

from streams.config import TeamParams

FACTORS = (
    "handle_time",
    "back_to_back",
    "hold",
    "escalation",
    "negative_sentiment",
    "hostility",
    "time_since_recovery",
    "customer_intensity",
    "talk_over",
)
(
    HANDLE_TIME,
    BACK_TO_BACK,
    HOLD,
    ESCALATION,
    NEGATIVE_SENTIMENT,
    HOSTILITY,
    TIME_SINCE_RECOVERY,
    CUSTOMER_INTENSITY,
    TALK_OVER,
) = range(len(FACTORS))

# Plain-words description of each factor, for reasons shown to supervisors and WFM.
FACTOR_DETAILS = (
    "calls longer than this agent's usual handle time",
    "calls taken with no recovery gap between them",
    "time with customers on hold",
    "transfers and escalations",
    "customer sentiment below what this agent usually meets",
    "abuse or threats from customers",
    "time on calls since the last real recovery",
    "customers louder and more agitated than usual",
    "customers talking over the agent",
)

# A customer sentiment deviation is never judged against a spread narrower than this, so that an
# agent whose customers happened to be uniform so far is not alerted by tiny changes.
_MIN_SENTIMENT_SPREAD = 0.05


def blend(own: float, prior: float, calls: int, min_calls: int) -> float:
    """Blend an agent's own baseline value with the team prior by the agent's history length."""
    if calls >= min_calls:
        return own
    weight = calls / min_calls
    return weight * own + (1.0 - weight) * prior


def ewma_update(mean: float, deviation: float, count: int, value: float, alpha: float) -> tuple[float, float]:
    """Update an exponentially weighted mean and mean absolute deviation with one value.

    The first value starts the mean; the deviation starts at 0 and grows with the spread seen.
    Early values are weighted as a plain average so that a short history is not dominated by the
    first call.
    """
    if count == 0:
        return value, 0.0
    weight = max(alpha, 1.0 / (count + 1))
    deviation = (1.0 - weight) * deviation + weight * abs(value - mean)
    mean = (1.0 - weight) * mean + weight * value
    return mean, deviation


def handle_time_impulse(params: TeamParams, handle_time_s: float, log_mean: float, calls: int) -> float:
    """Return the points for one handled call: ``handle_time_points`` times its handle time over the usual one."""
    usual_log = blend(log_mean, params.handle_time_prior_log, calls, params.min_calls)
    ratio = handle_time_s / math.exp(usual_log)
    return params.handle_time_points * min(ratio, params.handle_time_max_ratio)


def sentiment_deviation(params: TeamParams, score: float, mean: float, deviation: float, calls: int) -> float:
    """Return how many baseline spreads ``score`` lies below the agent's usual customer sentiment (≥ 0)."""
    if calls >= params.min_calls:
        usual, spread = mean, deviation
    else:
        usual = blend(mean, params.sentiment_prior_mean, calls, params.min_calls)
        spread = blend(deviation, params.sentiment_prior_spread, calls, params.min_calls)
    z = (usual - score) / (spread if spread > _MIN_SENTIMENT_SPREAD else _MIN_SENTIMENT_SPREAD)
    if z <= 0.0:
        return 0.0
    return z if z < params.sentiment_max_z else params.sentiment_max_z


def negative_sentiment_impulse(params: TeamParams, z: float, window_s: float | None) -> float:
    """Return the points for one customer sentiment window that lies ``z`` spreads below the baseline."""
    minutes = (window_s if window_s is not None else params.sentiment_default_window_s) / 60.0
    return params.negative_sentiment_points_per_min * minutes * z


def hold_impulse(params: TeamParams, hold_s: float) -> float:
    """Return the points for one stretch of a customer on hold."""
    return params.hold_points_per_min * hold_s / 60.0
