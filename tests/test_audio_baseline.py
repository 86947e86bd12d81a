"""Per-agent audio baselines and the customer-intensity and talk-over evidence."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from features.baseline import (
    SD_PER_MAD,
    AudioBaseline,
    BaselineConfig,
    customer_intensity,
    talk_over,
)
from features.command import extract_messages

EMOTIONS = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")


def customer_window(**values) -> dict:
    window = {"channel": "customer", "rms_dbfs": -26.0, "pitch_hz": None, "onset_rate_hz": None, "overlap_ratio": None}
    window.update(values)
    return window


def clip_messages(shared_data, emotion: str) -> list[dict]:
    path = shared_data / "crema-d-speech" / f"1001_DFA_{emotion}_XX.wav"
    return list(extract_messages([path], agent_id="a1", call_id=emotion, start_ts="2026-03-02T09:00:00Z"))


def clip_intensity(messages: list[dict], agent: AudioBaseline, team: AudioBaseline) -> float:
    scores = [evidence.score for message in messages if (evidence := customer_intensity(message, agent, team))]
    return sum(scores) / len(scores)


def test_angry_clip_scores_above_neutral(shared_data):
    clips = {emotion: clip_messages(shared_data, emotion) for emotion in EMOTIONS}
    # The team's usual customers: this speaker in all six emotions.
    team = AudioBaseline.from_prior()
    for messages in clips.values():
        for message in messages:
            team.update(message)
    agent = AudioBaseline.from_prior()

    angry = clip_intensity(clips["ANG"], agent, team)
    neutral = clip_intensity(clips["NEU"], agent, team)

    assert angry > neutral
    assert angry == pytest.approx(0.3603, abs=1e-3)
    assert neutral == pytest.approx(0.1130, abs=1e-3)


def test_new_agent_uses_team_prior():
    team = AudioBaseline.from_prior({"rms_dbfs": (-30.0, 2.0), "pitch_st": (5.0, 2.0),
                                     "onset_rate_hz": (3.0, 1.0), "overlap_ratio": (0.0, 0.1)})
    agent = AudioBaseline.from_prior()

    median, scale = agent.expected("rms_dbfs", team)

    assert median == -30.0
    assert scale == pytest.approx(2.0 * SD_PER_MAD)


def test_agent_history_replaces_prior_at_min_windows():
    config = BaselineConfig(min_windows=10)
    team = AudioBaseline.from_prior()
    agent = AudioBaseline.from_prior()
    for _ in range(10):
        agent.update(customer_window(rms_dbfs=-20.0), config)

    median, _ = agent.expected("rms_dbfs", team, config)

    assert agent.windows("rms_dbfs") == 10
    assert median == agent.median("rms_dbfs")
    assert median > -26.0


def test_median_and_mad_converge_on_a_stream():
    values = np.random.default_rng(7).normal(-20.0, 3.0, size=4000)
    baseline = AudioBaseline.from_prior()

    for value in values:
        baseline.update(customer_window(rms_dbfs=float(value)))

    assert baseline.median("rms_dbfs") == pytest.approx(-20.0, abs=0.5)
    assert baseline.mad("rms_dbfs") == pytest.approx(3.0 / SD_PER_MAD, abs=0.3)
    assert baseline.windows("rms_dbfs") == 4000


def test_window_without_speech_changes_nothing():
    baseline = AudioBaseline.from_prior()
    before = baseline.to_list()

    baseline.update(customer_window(rms_dbfs=None, onset_rate_hz=0.0, overlap_ratio=0.0))

    assert baseline.to_list() == before
    assert customer_intensity(customer_window(rms_dbfs=None), baseline, baseline) is None


def test_agent_channel_is_rejected():
    baseline = AudioBaseline.from_prior()

    with pytest.raises(ValueError, match="customer windows only, not channel 'agent'"):
        baseline.update(customer_window(channel="agent"))


def test_intensity_is_mean_of_positive_z_scores():
    team = AudioBaseline.from_prior()
    agent = AudioBaseline.from_prior()

    evidence = customer_intensity(customer_window(rms_dbfs=-16.0, pitch_hz=100.0, onset_rate_hz=2.0), agent, team)

    loudness = 10.0 / (4.0 * SD_PER_MAD)
    assert evidence.detail == pytest.approx({"rms_dbfs": loudness, "pitch_st": 0.0, "onset_rate_hz": 0.0})
    assert evidence.score == pytest.approx(loudness / 3.0)


def test_talk_over_against_baseline():
    team = AudioBaseline.from_prior()
    agent = AudioBaseline.from_prior()

    evidence = talk_over(customer_window(overlap_ratio=0.3), agent, team)
    missing = talk_over(customer_window(), agent, team)

    assert evidence.score == pytest.approx(0.3 / (0.05 * SD_PER_MAD))
    assert missing is None


def test_baseline_state_round_trips_and_stays_small():
    baseline = AudioBaseline.from_prior()
    baseline.update(customer_window(rms_dbfs=-22.0, pitch_hz=140.0, onset_rate_hz=4.0, overlap_ratio=0.1))

    restored = AudioBaseline.from_list(baseline.to_list())

    assert restored.to_list() == baseline.to_list()
    assert sys.getsizeof(baseline) + sys.getsizeof(baseline._state) <= 256
    with pytest.raises(ValueError, match="12 finite numbers"):
        AudioBaseline.from_list([0.0] * 3)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="min_windows=0"):
        BaselineConfig(min_windows=0)
    with pytest.raises(ValueError, match="half_life_windows=0.5"):
        BaselineConfig(half_life_windows=0.5)
