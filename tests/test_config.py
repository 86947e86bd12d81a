"""The configuration file: defaults, validation at start, per-team overrides and privacy mode."""

from __future__ import annotations

import math

import pytest

from streams import cli
from streams.config import ConfigError, load_config


def test_defaults_load():
    config = load_config()
    params = config.params("default")
    assert config.runtime.lateness_s == 30.0
    assert config.runtime.dedupe_window_s == 900.0
    assert config.privacy.mode == "default"
    assert config.privacy.agent_voice_factors is False
    assert params.amber == 50.0
    assert params.red == 70.0
    assert params.amber_exit == 40.0
    assert params.red_exit == 60.0
    assert params.micro_gap_s == 60.0
    assert params.decay_break_per_s == math.log(2) / 300.0
    assert params.decay_available_per_s == math.log(2) / 900.0
    assert params.decay_on_call_per_s == math.log(2) / 7200.0
    assert params.time_since_recovery_points_per_s == 6.0 / 3600.0
    assert params.offer_expiry_s == 300.0
    assert params.cooldown_s == 1200.0
    assert params.team_break_share == 0.15
    assert params.reason_code == "RECOVERY_BREAK"


def test_file_overrides_defaults(tmp_path):
    path = tmp_path / "agentload.toml"
    path.write_text("[levels]\namber = 55\nred = 80\n\n[breaks]\ncooldown_s = 600\n", encoding="utf-8")
    params = load_config(path).params("default")
    assert params.amber == 55.0
    assert params.red == 80.0
    assert params.red_exit == 70.0
    assert params.cooldown_s == 600.0
    assert params.offer_expiry_s == 300.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[levels]\nred = -5\n", ": levels.red = -5 is out of range; use a number in (0, 1000]"),
        ("[breaks]\nteam_break_share = 1.5\n", ": breaks.team_break_share = 1.5 is out of range; use a number in [0, 1]"),
        ("[baseline]\nmin_calls = 2.5\n", ": baseline.min_calls = 2.5 is invalid; use a whole number in [1, 10000]"),
        ("[load]\nhalf_life_break_s = \"5 min\"\n", ": load.half_life_break_s = '5 min' is invalid; use a number in [1, 604800]"),
        ("[breaks]\noffer_expiry_s = 0\n", ": breaks.offer_expiry_s = 0 is out of range; use a number in (0, 86400]"),
        ("[privacy]\nmode = \"us\"\n", ": privacy.mode = 'us' is invalid; use one of 'default', 'eu'"),
        ("[privacy]\nagent_voice_factors = 1\n", ": privacy.agent_voice_factors = 1 is invalid; use true or false"),
        ("[breaks]\nreason_code = \"RECOVERY_BREAK_FOR_LOAD_XYZ\"\n", ": breaks.reason_code = 'RECOVERY_BREAK_FOR_LOAD_XYZ' is invalid; use a string of 1 to 24 characters"),
        ("[levels]\nhysteresis = true\n", ": levels.hysteresis = True is invalid; use a number in [0, 1000]"),
    ],
)
def test_bad_value_rejected_with_key_value_and_range(tmp_path, text, expected):
    path = tmp_path / "agentload.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(raised.value) == str(path) + expected


def test_nan_value_rejected():
    with pytest.raises(ConfigError) as raised:
        load_config(overrides={"load": {"micro_gap_s": math.nan}})
    assert str(raised.value) == "overrides: load.micro_gap_s = nan is out of range; use a number in [0, 3600]"


def test_unknown_key_rejected():
    with pytest.raises(ConfigError) as raised:
        load_config(overrides={"levels": {"orange": 60.0}})
    assert str(raised.value) == "overrides: unknown key levels.orange; the keys of [levels] are amber, red, hysteresis"


def test_unknown_section_rejected():
    with pytest.raises(ConfigError) as raised:
        load_config(overrides={"level": {"amber": 60.0}})
    assert str(raised.value) == (
        "overrides: unknown section [level]; the sections are runtime, load, factors, baseline, levels, breaks, "
        "privacy, teams"
    )


def test_unknown_team_section_rejected():
    with pytest.raises(ConfigError) as raised:
        load_config(overrides={"teams": {"billing": {"runtime": {"lateness_s": 10.0}}}})
    assert str(raised.value) == (
        "overrides: [teams.billing.runtime] cannot be set per team; per-team sections are load, factors, "
        "baseline, levels, breaks"
    )


def test_unknown_team_key_rejected():
    with pytest.raises(ConfigError) as raised:
        load_config(overrides={"teams": {"billing": {"breaks": {"share": 0.2}}}})
    assert str(raised.value).startswith("overrides: unknown key teams.billing.breaks.share; the keys of [breaks] are ")


def test_bad_team_value_rejected():
    with pytest.raises(ConfigError) as raised:
        load_config(overrides={"teams": {"billing": {"breaks": {"team_break_share": 2.0}}}})
    assert str(raised.value) == (
        "overrides: teams.billing.breaks.team_break_share = 2.0 is out of range; use a number in [0, 1]"
    )


def test_amber_not_below_red_rejected():
    with pytest.raises(ConfigError) as raised:
        load_config(overrides={"levels": {"amber": 80.0}})
    assert str(raised.value) == "overrides: levels.amber = 80 must be below levels.red = 70"


def test_team_amber_not_below_red_rejected():
    with pytest.raises(ConfigError) as raised:
        load_config(overrides={"teams": {"billing": {"levels": {"red": 45.0}}}})
    assert str(raised.value) == "[teams.billing]: levels.amber = 50 must be below levels.red = 45"


def test_hysteresis_not_below_amber_rejected():
    with pytest.raises(ConfigError) as raised:
        load_config(overrides={"levels": {"hysteresis": 50.0}})
    assert str(raised.value) == (
        "overrides: levels.hysteresis = 50 must be below levels.amber = 50, or an agent could never return to green"
    )


def test_min_break_above_max_rejected():
    with pytest.raises(ConfigError) as raised:
        load_config(overrides={"breaks": {"min_break_s": 1000.0}})
    assert str(raised.value) == "overrides: breaks.min_break_s = 1000 must not exceed breaks.max_break_s = 900"


def test_team_override_applies_to_that_team_only():
    config = load_config(
        overrides={"teams": {"collections": {"breaks": {"team_break_share": 0.25}, "levels": {"red": 80.0}}}}
    )
    collections = config.params("collections")
    billing = config.params("billing")
    assert collections.team_break_share == 0.25
    assert collections.red == 80.0
    assert collections.red_exit == 70.0
    assert collections.amber == 50.0
    assert billing.team_break_share == 0.15
    assert billing.red == 70.0
    assert config.params("default").red == 70.0


def test_team_override_over_file_value(tmp_path):
    path = tmp_path / "agentload.toml"
    path.write_text(
        "[breaks]\ncooldown_s = 600\n\n[teams.night.breaks]\ncooldown_s = 300\n", encoding="utf-8"
    )
    config = load_config(path)
    assert config.params("night").cooldown_s == 300.0
    assert config.params("day").cooldown_s == 600.0


def test_eu_mode_rejects_agent_voice_factors():
    with pytest.raises(ConfigError) as raised:
        load_config(overrides={"privacy": {"mode": "eu", "agent_voice_factors": True}})
    message = str(raised.value)
    assert message.startswith("privacy.agent_voice_factors = true is not allowed with privacy.mode = 'eu': ")
    assert "EU AI Act (Art. 5(1)(f)) prohibits inferring employees' emotions from their voice at work" in message
    assert message.endswith("set agent_voice_factors = false or use mode = 'default' outside the EU")


def test_eu_mode_without_agent_voice_factors_loads():
    config = load_config(overrides={"privacy": {"mode": "eu"}})
    assert config.privacy.mode == "eu"
    assert config.privacy.agent_voice_factors is False


def test_missing_file_rejected(tmp_path):
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(raised.value) == f"config file {str(path)!r} not found; pass an existing TOML file to --config"


def test_invalid_toml_rejected(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[levels\namber = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(raised.value).startswith(f"config file {str(path)!r} is not valid TOML: ")


def test_command_stops_at_start_on_bad_config(tmp_path, capsys):
    path = tmp_path / "agentload.toml"
    path.write_text("[levels]\nred = 5000\n", encoding="utf-8")
    events = tmp_path / "events.jsonl"
    events.write_text("", encoding="utf-8")

    code = cli.main(["--config", str(path), "replay", str(events)])

    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"agentload: {path}: levels.red = 5000 is out of range; use a number in (0, 1000]\n"


def test_config_that_never_offers_a_break_is_rejected():
    with pytest.raises(ConfigError) as raised:
        load_config(overrides={"breaks": {"team_break_share": 0.0, "min_concurrent_breaks": 0}})
    assert str(raised.value) == (
        "overrides: breaks.team_break_share = 0 with breaks.min_concurrent_breaks = 0 would never offer a break, "
        "not even one an agent asks for; raise one of them"
    )
