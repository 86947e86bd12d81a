"""Loading and validation of the one agentload configuration file.

The defaults live in ``defaults.toml`` beside this module, with a comment on every key. A user's
file overrides any of them, and ``[teams.TEAM_ID.SECTION]`` tables override the team-scoped
sections for one team. Every value is checked at start, so a bad value stops agentload with the
key, the value and the allowed range instead of surfacing mid-shift.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from features.baseline import BaselineConfig

DEFAULTS_PATH = Path(__file__).with_name("defaults.toml")

TEAM_SECTIONS = ("load", "factors", "baseline", "levels", "breaks")

_DAY_S = 86_400.0
_WEEK_S = 7 * _DAY_S


@dataclass(frozen=True)
class _Rule:
    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(repr(choice) for choice in self.choices)
        if self.kind is bool:
            return "true or false"
        if self.kind is str:
            return f"a string of {self.low:g} to {self.high:g} characters"
        noun = "a whole number" if self.kind is int else "a number"
        opening = "(" if self.low_open else "["
        return f"{noun} in {opening}{self.low:g}, {self.high:g}]"


def _seconds(high: float = _DAY_S, low: float = 0.0, low_open: bool = False) -> _Rule:
    return _Rule(float, low, high, low_open)


def _points(high: float = 100.0) -> _Rule:
    return _Rule(float, 0.0, high)


_RULES: dict[str, dict[str, _Rule]] = {
    "runtime": {
        "lateness_s": _seconds(3600.0),
        "tick_interval_s": _seconds(3600.0, low=0.0, low_open=True),
        "snapshot_interval_s": _seconds(_DAY_S, low=1.0),
        "dedupe_window_s": _seconds(_DAY_S),
        "break_history_s": _seconds(_WEEK_S, low=60.0),
        "event_source": _Rule(str, 1, 200),
        "default_team": _Rule(str, 1, 200),
    },
    "load": {
        "half_life_on_call_s": _seconds(_WEEK_S, low=1.0),
        "half_life_acw_s": _seconds(_WEEK_S, low=1.0),
        "half_life_available_s": _seconds(_WEEK_S, low=1.0),
        "half_life_break_s": _seconds(_WEEK_S, low=1.0),
        "micro_gap_s": _seconds(3600.0),
        "min_recovery_s": _seconds(),
        "idle_recovery_s": _seconds(_WEEK_S),
    },
    "factors": {
        "handle_time_points": _points(),
        "handle_time_max_ratio": _Rule(float, 1.0, 100.0),
        "back_to_back_points": _points(),
        "hold_points_per_min": _points(),
        "escalation_points": _points(),
        "negative_sentiment_points_per_min": _points(),
        "sentiment_max_z": _Rule(float, 0.0, 100.0),
        "sentiment_default_window_s": _seconds(3600.0, low=0.0, low_open=True),
        "abuse_points": _points(),
        "threat_points": _points(),
        "time_since_recovery_points_per_h": _points(),
        "customer_intensity_points_per_min": _points(),
        "talk_over_points_per_min": _points(),
        "audio_max_z": _Rule(float, 0.0, 100.0),
    },
    "baseline": {
        "min_calls": _Rule(int, 1, 10_000),
        "ewma_alpha": _Rule(float, 0.0, 1.0, low_open=True),
        "handle_time_prior_s": _seconds(36_000.0, low=1.0),
        "handle_time_prior_spread": _Rule(float, 0.0, 10.0, low_open=True),
        "sentiment_prior_mean": _Rule(float, -1.0, 1.0),
        "sentiment_prior_spread": _Rule(float, 0.0, 2.0, low_open=True),
        "audio_min_windows": _Rule(int, 1, 1_000_000),
        "audio_half_life_windows": _Rule(float, 1.0, 1e7),
    },
    "levels": {
        "amber": _Rule(float, 0.0, 1000.0, low_open=True),
        "red": _Rule(float, 0.0, 1000.0, low_open=True),
        "hysteresis": _Rule(float, 0.0, 1000.0),
    },
    "breaks": {
        "hostile_streak_calls": _Rule(int, 1, 100),
        "hostile_streak_window_s": _seconds(),
        "hostile_sentiment_max": _Rule(float, -1.0, 1.0),
        "amber_hold_s": _seconds(low=0.0, low_open=True),
        "offer_expiry_s": _seconds(low=0.0, low_open=True),
        "cooldown_s": _seconds(),
        "min_break_s": _seconds(7200.0, low=60.0),
        "max_break_s": _seconds(7200.0, low=60.0),
        "team_break_share": _Rule(float, 0.0, 1.0),
        "min_concurrent_breaks": _Rule(int, 0, 10_000),
        "deferred_max_s": _seconds(low=0.0, low_open=True),
        "accepted_start_timeout_s": _seconds(low=0.0, low_open=True),
        "break_overrun_s": _seconds(),
        "reason_code": _Rule(str, 1, 24),
    },
    "privacy": {
        "mode": _Rule(str, choices=("default", "eu")),
        "agent_voice_factors": _Rule(bool),
    },
}


class ConfigError(ValueError):
    """A configuration value that agentload cannot start with."""


@dataclass(frozen=True, slots=True)
class TeamParams:
    """The resolved load, factor, baseline, level and break settings of one team.

    Half-lives are turned into decay rates once here (``decay_*_per_s``, the ``k`` of
    ``exp(-k * t)``) so the hot path never recomputes them.
    """

    team_id: str
    decay_on_call_per_s: float
    decay_acw_per_s: float
    decay_available_per_s: float
    decay_break_per_s: float
    micro_gap_s: float
    min_recovery_s: float
    idle_recovery_s: float
    handle_time_points: float
    handle_time_max_ratio: float
    back_to_back_points: float
    hold_points_per_min: float
    escalation_points: float
    negative_sentiment_points_per_min: float
    sentiment_max_z: float
    sentiment_default_window_s: float
    abuse_points: float
    threat_points: float
    time_since_recovery_points_per_s: float
    customer_intensity_points_per_min: float
    talk_over_points_per_min: float
    audio_max_z: float
    min_calls: int
    ewma_alpha: float
    handle_time_prior_log: float
    handle_time_prior_spread: float
    sentiment_prior_mean: float
    sentiment_prior_spread: float
    audio_baseline: BaselineConfig
    amber: float
    red: float
    amber_exit: float
    red_exit: float
    hostile_streak_calls: int
    hostile_streak_window_s: float
    hostile_sentiment_max: float
    amber_hold_s: float
    offer_expiry_s: float
    cooldown_s: float
    min_break_s: float
    max_break_s: float
    team_break_share: float
    min_concurrent_breaks: int
    deferred_max_s: float
    accepted_start_timeout_s: float
    break_overrun_s: float
    reason_code: str


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    lateness_s: float
    tick_interval_s: float
    snapshot_interval_s: float
    dedupe_window_s: float
    break_history_s: float
    event_source: str
    default_team: str


@dataclass(frozen=True, slots=True)
class PrivacySettings:
    mode: str
    agent_voice_factors: bool


class Config:
    """A validated configuration: runtime and privacy settings, and parameters per team."""

    def __init__(self, sections: dict[str, dict[str, Any]], teams: dict[str, dict[str, dict[str, Any]]]):
        self.sections = sections
        self.team_overrides = teams
        self.runtime = RuntimeSettings(**sections["runtime"])
        self.privacy = PrivacySettings(**sections["privacy"])
        self._params: dict[str, TeamParams] = {}

    def params(self, team_id: str) -> TeamParams:
        """Return the parameters of ``team_id``: the defaults with that team's overrides applied."""
        params = self._params.get(team_id)
        if params is None:
            params = self._params[team_id] = _resolve_team(team_id, self.sections, self.team_overrides.get(team_id, {}))
        return params


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Load the defaults, then ``path`` if given, then ``overrides`` (a TOML-shaped dict), and validate.

    Raises :class:`ConfigError` naming the file, key, value and allowed range of the first bad value.
    """
    with DEFAULTS_PATH.open("rb") as handle:
        sections = tomllib.load(handle)
    teams: dict[str, dict[str, dict[str, Any]]] = {}

    layers: list[tuple[str, dict[str, Any]]] = []
    if path is not None:
        try:
            with open(path, "rb") as handle:
                layers.append((str(path), tomllib.load(handle)))
        except FileNotFoundError:
            raise ConfigError(f"config file {str(path)!r} not found; pass an existing TOML file to --config") from None
        except OSError as exc:
            raise ConfigError(f"config file {str(path)!r} cannot be read: {exc.strerror}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
    if overrides:
        layers.append(("overrides", overrides))

    for origin, layer in layers:
        for section, values in layer.items():
            if section == "teams":
                _merge_teams(origin, values, teams)
                continue
            if section not in _RULES:
                raise ConfigError(f"{origin}: unknown section [{section}]; the sections are {', '.join(_RULES)}, teams")
            if not isinstance(values, dict):
                raise ConfigError(f"{origin}: [{section}] must be a table of keys")
            for key, value in values.items():
                sections[section][key] = _check(origin, section, key, value)

    _check_cross(DEFAULTS_PATH.name if not layers else layers[-1][0], sections)
    if sections["privacy"]["mode"] == "eu" and sections["privacy"]["agent_voice_factors"]:
        raise ConfigError(
            "privacy.agent_voice_factors = true is not allowed with privacy.mode = 'eu': the EU AI Act "
            "(Art. 5(1)(f)) prohibits inferring employees' emotions from their voice at work; "
            "set agent_voice_factors = false or use mode = 'default' outside the EU"
        )
    for team_id, team_sections in teams.items():
        merged = {name: {**sections[name], **team_sections.get(name, {})} for name in TEAM_SECTIONS}
        _check_cross(f"[teams.{team_id}]", merged)
    return Config(sections, teams)


def _merge_teams(origin: str, values: Any, teams: dict[str, dict[str, dict[str, Any]]]) -> None:
    if not isinstance(values, dict):
        raise ConfigError(f"{origin}: [teams] must hold one table per team, e.g. [teams.billing.breaks]")
    for team_id, team_sections in values.items():
        if not isinstance(team_sections, dict):
            raise ConfigError(f"{origin}: [teams.{team_id}] must hold section tables such as [teams.{team_id}.breaks]")
        for section, keys in team_sections.items():
            if section not in TEAM_SECTIONS:
                raise ConfigError(
                    f"{origin}: [teams.{team_id}.{section}] cannot be set per team; "
                    f"per-team sections are {', '.join(TEAM_SECTIONS)}"
                )
            if not isinstance(keys, dict):
                raise ConfigError(f"{origin}: [teams.{team_id}.{section}] must be a table of keys")
            target = teams.setdefault(team_id, {}).setdefault(section, {})
            for key, value in keys.items():
                target[key] = _check(origin, f"teams.{team_id}.{section}", key, value, rules_section=section)


def _check(origin: str, section: str, key: str, value: Any, rules_section: str | None = None) -> Any:
    rules = _RULES[rules_section or section]
    rule = rules.get(key)
    where = f"{origin}: {section}.{key}"
    if rule is None:
        raise ConfigError(f"{origin}: unknown key {section}.{key}; the keys of [{rules_section or section}] are {', '.join(rules)}")

    if rule.kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} = {value!r} is invalid; use {rule.describe()}")
        return value
    if rule.kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} = {value!r} is invalid; use {rule.describe()}")
        if rule.choices and value not in rule.choices:
            raise ConfigError(f"{where} = {value!r} is invalid; use {rule.describe()}")
        if not rule.choices and not rule.low <= len(value) <= rule.high:
            raise ConfigError(f"{where} = {value!r} is invalid; use {rule.describe()}")
        return value

    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where} = {value!r} is invalid; use {rule.describe()}")
    if rule.kind is int and not isinstance(value, int):
        raise ConfigError(f"{where} = {value!r} is invalid; use {rule.describe()}")
    too_low = value <= rule.low if rule.low_open else value < rule.low
    if not math.isfinite(value) or too_low or value > rule.high:
        raise ConfigError(f"{where} = {value!r} is out of range; use {rule.describe()}")
    return rule.kind(value)


def _check_cross(origin: str, sections: dict[str, dict[str, Any]]) -> None:
    levels = sections["levels"]
    if levels["amber"] >= levels["red"]:
        raise ConfigError(
            f"{origin}: levels.amber = {levels['amber']:g} must be below levels.red = {levels['red']:g}"
        )
    if levels["hysteresis"] >= levels["amber"]:
        raise ConfigError(
            f"{origin}: levels.hysteresis = {levels['hysteresis']:g} must be below levels.amber = "
            f"{levels['amber']:g}, or an agent could never return to green"
        )
    breaks = sections["breaks"]
    if breaks["team_break_share"] == 0 and breaks["min_concurrent_breaks"] == 0:
        raise ConfigError(
            f"{origin}: breaks.team_break_share = 0 with breaks.min_concurrent_breaks = 0 would never offer a break, "
            "not even one an agent asks for; raise one of them"
        )
    if breaks["min_break_s"] > breaks["max_break_s"]:
        raise ConfigError(
            f"{origin}: breaks.min_break_s = {breaks['min_break_s']:g} must not exceed "
            f"breaks.max_break_s = {breaks['max_break_s']:g}"
        )


def _resolve_team(team_id: str, sections: dict[str, dict[str, Any]], overrides: dict[str, dict[str, Any]]) -> TeamParams:
    merged = {name: {**sections[name], **overrides.get(name, {})} for name in TEAM_SECTIONS}
    load, factors, baseline = merged["load"], merged["factors"], merged["baseline"]
    levels, breaks = merged["levels"], merged["breaks"]

    def decay(half_life_s: float) -> float:
        return math.log(2.0) / half_life_s

    return TeamParams(
        team_id=team_id,
        decay_on_call_per_s=decay(load["half_life_on_call_s"]),
        decay_acw_per_s=decay(load["half_life_acw_s"]),
        decay_available_per_s=decay(load["half_life_available_s"]),
        decay_break_per_s=decay(load["half_life_break_s"]),
        micro_gap_s=load["micro_gap_s"],
        min_recovery_s=load["min_recovery_s"],
        idle_recovery_s=load["idle_recovery_s"],
        handle_time_points=factors["handle_time_points"],
        handle_time_max_ratio=factors["handle_time_max_ratio"],
        back_to_back_points=factors["back_to_back_points"],
        hold_points_per_min=factors["hold_points_per_min"],
        escalation_points=factors["escalation_points"],
        negative_sentiment_points_per_min=factors["negative_sentiment_points_per_min"],
        sentiment_max_z=factors["sentiment_max_z"],
        sentiment_default_window_s=factors["sentiment_default_window_s"],
        abuse_points=factors["abuse_points"],
        threat_points=factors["threat_points"],
        time_since_recovery_points_per_s=factors["time_since_recovery_points_per_h"] / 3600.0,
        customer_intensity_points_per_min=factors["customer_intensity_points_per_min"],
        talk_over_points_per_min=factors["talk_over_points_per_min"],
        audio_max_z=factors["audio_max_z"],
        min_calls=baseline["min_calls"],
        ewma_alpha=baseline["ewma_alpha"],
        handle_time_prior_log=math.log(baseline["handle_time_prior_s"]),
        handle_time_prior_spread=baseline["handle_time_prior_spread"],
        sentiment_prior_mean=baseline["sentiment_prior_mean"],
        sentiment_prior_spread=baseline["sentiment_prior_spread"],
        audio_baseline=BaselineConfig(
            half_life_windows=baseline["audio_half_life_windows"], min_windows=baseline["audio_min_windows"]
        ),
        amber=levels["amber"],
        red=levels["red"],
        amber_exit=levels["amber"] - levels["hysteresis"],
        red_exit=levels["red"] - levels["hysteresis"],
        hostile_streak_calls=breaks["hostile_streak_calls"],
        hostile_streak_window_s=breaks["hostile_streak_window_s"],
        hostile_sentiment_max=breaks["hostile_sentiment_max"],
        amber_hold_s=breaks["amber_hold_s"],
        offer_expiry_s=breaks["offer_expiry_s"],
        cooldown_s=breaks["cooldown_s"],
        min_break_s=breaks["min_break_s"],
        max_break_s=breaks["max_break_s"],
        team_break_share=breaks["team_break_share"],
        min_concurrent_breaks=breaks["min_concurrent_breaks"],
        deferred_max_s=breaks["deferred_max_s"],
        accepted_start_timeout_s=breaks["accepted_start_timeout_s"],
        break_overrun_s=breaks["break_overrun_s"],
        reason_code=breaks["reason_code"],
    )
