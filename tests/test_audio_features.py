"""Audio features: streaming without seams, real clips, edge cases, WAV input and the command."""

from __future__ import annotations

import argparse
import io
import json
import math

import numpy as np
import pytest
import soundfile

from features.audio import (
    FEATURE_NAMES,
    AudioInputError,
    FeatureExtractor,
    check_window_s,
    warm_up,
)
from features.command import add_arguments, extract_messages, run
from features.wav import inspect_wav
from streams.events import validate_audio_features

START_TS = "2026-03-02T09:15:00Z"
ANGRY = "crema-d-speech/1001_DFA_ANG_XX.wav"
NEUTRAL = "crema-d-speech/1001_DFA_NEU_XX.wav"
DIGIT = "fsdd-8khz-digits/3_jackson_0.wav"


def voice(sr: int, seconds: float, *, f0_hz: float = 150.0, level: float = 0.2, seed: int = 0) -> np.ndarray:
    """Return a voiced, syllable-like test signal: a harmonic tone pulsed at 4 Hz over faint noise."""
    t = np.arange(round(sr * seconds)) / sr
    tone = sum(np.sin(2 * np.pi * f0_hz * k * t) / k for k in range(1, 6))
    envelope = np.clip(np.sin(2 * np.pi * 4.0 * t) * 2.0, 0.0, 1.0)
    noise = 0.001 * np.random.default_rng(seed).standard_normal(t.size)
    return level * tone * envelope / 2.0 + noise


def windows_of(extractor: FeatureExtractor, y: np.ndarray, chunk: int | None = None) -> list:
    if chunk is None:
        return extractor.push(y) + extractor.flush()
    results = []
    for start in range(0, y.shape[-1], chunk):
        results += extractor.push(y[..., start : start + chunk])
    return results + extractor.flush()


def messages_of(path, **options) -> list[dict]:
    options.setdefault("agent_id", "agent-7")
    options.setdefault("call_id", "call-1")
    options.setdefault("start_ts", START_TS)
    return list(extract_messages([path], **options))


def assert_valid_messages(messages: list[dict]) -> None:
    for message in messages:
        validate_audio_features(message)
        for name in FEATURE_NAMES:
            value = message[name]
            assert value is None or math.isfinite(value), (name, value)


def rounded(message: dict) -> dict:
    return {name: message[name] for name in ("window_s", *FEATURE_NAMES)}


@pytest.mark.parametrize("chunk", [37, 1000, 4096, 16001])
def test_chunked_stream_matches_whole_file(shared_data, chunk):
    y, sr = soundfile.read(shared_data / ANGRY, dtype="float64")

    whole = windows_of(FeatureExtractor(sr), y)
    chunked = windows_of(FeatureExtractor(sr), y, chunk)

    assert chunked == whole
    assert len(whole) == 3


def test_chunked_stereo_matches_whole_at_8k():
    sr = 8000
    customer = voice(sr, 3.3, f0_hz=180.0)
    agent = voice(sr, 3.3, f0_hz=110.0, seed=1)[::-1].copy()
    stereo = np.stack((customer, agent))
    options = dict(channels=("customer", "agent"), publish=("customer", "agent"), window_s=0.5)

    whole = windows_of(FeatureExtractor(sr, **options), stereo)
    uneven = FeatureExtractor(sr, **options)
    pieces = []
    for start, stop in [(0, 1), (1, 999), (999, 4000), (4000, 4001), (4001, stereo.shape[1])]:
        pieces += uneven.push(stereo[:, start:stop])
    pieces += uneven.flush()

    assert pieces == whole
    assert [window.channel for window in whole[:2]] == ["customer", "agent"]
    assert len(whole) == 2 * 7


def test_angry_and_neutral_clip_values(shared_data):
    angry = [rounded(message) for message in messages_of(shared_data / ANGRY)]
    neutral = [rounded(message) for message in messages_of(shared_data / NEUTRAL)]

    expected_angry = [
        {"window_s": 1.0, "rms_dbfs": -25.685, "pitch_hz": 155.2325, "pitch_sd_st": 0.8093, "voiced_ratio": 0.3814,
         "speech_ratio": 0.6495, "overlap_ratio": None, "onset_rate_hz": 4.1237, "clipped_ratio": 0.0},
        {"window_s": 1.0, "rms_dbfs": -29.6656, "pitch_hz": 127.1049, "pitch_sd_st": 0.6699, "voiced_ratio": 0.22,
         "speech_ratio": 0.59, "overlap_ratio": None, "onset_rate_hz": 4.0, "clipped_ratio": 0.0},
        {"window_s": 0.2727, "rms_dbfs": -48.7786, "pitch_hz": None, "pitch_sd_st": None, "voiced_ratio": 0.0741,
         "speech_ratio": 0.1481, "overlap_ratio": None, "onset_rate_hz": 0.0, "clipped_ratio": 0.0},
    ]
    expected_neutral = NEUTRAL_VALUES
    assert len(angry) == len(expected_angry)
    for got, expected in zip(angry, expected_angry):
        assert got == pytest.approx(expected, abs=2e-4)
    assert len(neutral) == len(expected_neutral)
    for got, expected in zip(neutral, expected_neutral):
        assert got == pytest.approx(expected, abs=2e-4)


NEUTRAL_VALUES = [
    {"window_s": 1.0, "rms_dbfs": -31.5125, "pitch_hz": 127.2031, "pitch_sd_st": 2.1193, "voiced_ratio": 0.2474,
     "speech_ratio": 0.6186, "overlap_ratio": None, "onset_rate_hz": 4.1237, "clipped_ratio": 0.0},
    {"window_s": 1.0, "rms_dbfs": -40.589, "pitch_hz": None, "pitch_sd_st": None, "voiced_ratio": 0.05,
     "speech_ratio": 0.46, "overlap_ratio": None, "onset_rate_hz": 2.0, "clipped_ratio": 0.0},
    {"window_s": 0.0637, "rms_dbfs": -49.5505, "pitch_hz": None, "pitch_sd_st": None, "voiced_ratio": 0.1667,
     "speech_ratio": 0.3333, "overlap_ratio": None, "onset_rate_hz": 0.0, "clipped_ratio": 0.0},
]


def test_digit_clip_values_at_8k(shared_data):
    (message,) = messages_of(shared_data / DIGIT)

    assert rounded(message) == pytest.approx(DIGIT_VALUES, abs=2e-4)
    assert message["ts"] == "2026-03-02T09:15:00.485Z"


DIGIT_VALUES = {
    "window_s": 0.4858, "rms_dbfs": -21.9089, "pitch_hz": 106.19, "pitch_sd_st": 0.856, "voiced_ratio": 0.8,
    "speech_ratio": 0.8222, "overlap_ratio": None, "onset_rate_hz": 4.4444, "clipped_ratio": 0.0,
}


def test_digit_clips_have_plausible_features(shared_data):
    paths = sorted((shared_data / "fsdd-8khz-digits").glob("*.wav"))
    assert len(paths) == 10

    for path in paths:
        (message,) = messages_of(path)
        assert_valid_messages([message])
        assert -35.0 <= message["rms_dbfs"] <= -10.0, path.name
        assert 0.5 <= message["speech_ratio"] <= 1.0, path.name
        assert 0.0 <= message["voiced_ratio"] <= message["speech_ratio"], path.name
        assert 0.0 <= message["onset_rate_hz"] <= 10.0, path.name
        assert message["clipped_ratio"] == 0.0, path.name
        assert message["overlap_ratio"] is None, path.name
        if message["pitch_hz"] is not None:
            assert 65.0 <= message["pitch_hz"] <= 600.0, path.name
    pitches = [messages_of(path)[0]["pitch_hz"] for path in paths]
    assert sum(pitch is not None and 90.0 <= pitch <= 130.0 for pitch in pitches) >= 8


def test_digital_silence_gives_nulls_not_nan():
    (window,) = windows_of(FeatureExtractor(8000), np.zeros(8000))

    assert window.rms_dbfs is None
    assert window.pitch_hz is None
    assert window.pitch_sd_st is None
    assert window.speech_ratio == 0.0
    assert window.voiced_ratio == 0.0
    assert window.onset_rate_hz == 0.0
    assert window.clipped_ratio == 0.0


def test_synthetic_voice_pitch_and_activity():
    (window,) = windows_of(FeatureExtractor(16000), voice(16000, 1.0, f0_hz=150.0))

    assert window.pitch_hz == pytest.approx(150.0, abs=1.0)
    assert window.pitch_sd_st < 0.2
    assert 0.4 <= window.speech_ratio <= 0.8
    assert window.voiced_ratio <= window.speech_ratio


def test_clipping_counts_samples_at_full_scale():
    y = np.clip(voice(8000, 1.0, level=4.0), -1.0, 1.0)
    expected = np.count_nonzero(np.abs(y) >= 0.98) / y.size

    (window,) = windows_of(FeatureExtractor(8000), y)

    assert expected > 0.05
    assert window.clipped_ratio == expected


def test_clip_shorter_than_window_gives_one_short_window():
    (short,) = windows_of(FeatureExtractor(8000), voice(8000, 0.2))
    (tiny,) = windows_of(FeatureExtractor(8000), voice(8000, 0.02))

    assert short.window_s == 0.2
    assert short.end_s == 0.2
    assert short.speech_ratio > 0.0
    assert tiny.window_s == 0.02
    assert tiny.speech_ratio is None
    assert tiny.rms_dbfs is None
    assert tiny.clipped_ratio == 0.0


def test_empty_stream_gives_no_window():
    extractor = FeatureExtractor(8000)

    assert extractor.push(np.zeros(0)) == []
    assert extractor.flush() == []


def test_dc_offset_changes_no_voice_feature():
    y = voice(8000, 2.0)

    plain = windows_of(FeatureExtractor(8000), y)
    shifted = windows_of(FeatureExtractor(8000), y + 0.3)

    for a, b in zip(plain, shifted):
        assert b.rms_dbfs == pytest.approx(a.rms_dbfs, abs=1e-6)
        assert b.speech_ratio == a.speech_ratio
        assert b.voiced_ratio == a.voiced_ratio
        assert b.pitch_hz == pytest.approx(a.pitch_hz, abs=1e-6)
        assert b.onset_rate_hz == a.onset_rate_hz


def test_nan_samples_are_left_out():
    y = voice(8000, 2.0)
    y[1000:1100] = np.nan
    y[8000:] = np.nan

    first, second = windows_of(FeatureExtractor(8000), y)

    assert first.speech_ratio is not None and 0.0 < first.speech_ratio < 1.0
    assert first.rms_dbfs is not None and math.isfinite(first.rms_dbfs)
    assert first.clipped_ratio == 0.0
    assert second.values() == {name: None for name in FEATURE_NAMES}


def test_overlap_needs_both_sides_talking():
    sr = 8000
    customer = voice(sr, 1.0)
    agent_talks = voice(sr, 1.0, seed=3)
    agent_silent = np.zeros(sr)

    (talking,) = windows_of(FeatureExtractor(sr, channels=("customer", "agent")), np.stack((customer, agent_talks)))
    (quiet,) = windows_of(FeatureExtractor(sr, channels=("customer", "agent")), np.stack((customer, agent_silent)))

    assert talking.overlap_ratio == talking.speech_ratio
    assert quiet.overlap_ratio == 0.0


def test_agent_voice_is_not_published_by_default():
    stereo = np.stack((voice(8000, 1.0), voice(8000, 1.0, seed=2)))

    windows = windows_of(FeatureExtractor(8000, channels=("customer", "agent")), stereo)

    assert [window.channel for window in windows] == ["customer"]
    with pytest.raises(AudioInputError, match="agent"):
        FeatureExtractor(8000, channels=("agent",))


def test_window_s_must_fit_the_hop():
    with pytest.raises(AudioInputError, match=r"window_s=0.333 is not a multiple of the 10 ms"):
        check_window_s(0.333)
    with pytest.raises(AudioInputError, match=r"window_s=0.05 is out of range"):
        check_window_s(0.05)


def test_integer_samples_are_rejected():
    with pytest.raises(AudioInputError, match="dtype int16"):
        FeatureExtractor(8000).push(np.zeros(100, dtype=np.int16))


def test_warm_up_runs():
    warm_up()


def write_wav(path, y: np.ndarray, sr: int, subtype: str = "PCM_16") -> None:
    soundfile.write(str(path), y.T if y.ndim == 2 else y, sr, subtype=subtype)


def test_unsupported_sample_rate_is_rejected(tmp_path):
    path = tmp_path / "cd.wav"
    write_wav(path, voice(44100, 0.5), 44100)

    with pytest.raises(AudioInputError, match="44100 Hz; use 8000 or 16000"):
        messages_of(path)


def test_mulaw_wav_matches_pcm(tmp_path):
    y = voice(8000, 2.0)
    write_wav(tmp_path / "pcm.wav", y, 8000)
    write_wav(tmp_path / "ulaw.wav", y, 8000, subtype="ULAW")

    pcm = messages_of(tmp_path / "pcm.wav")
    ulaw = messages_of(tmp_path / "ulaw.wav")

    assert inspect_wav(tmp_path / "ulaw.wav").sr == 8000
    assert len(ulaw) == len(pcm) == 2
    for a, b in zip(pcm, ulaw):
        assert b["rms_dbfs"] == pytest.approx(a["rms_dbfs"], abs=0.5)
        assert b["pitch_hz"] == pytest.approx(a["pitch_hz"], abs=2.0)
        assert b["speech_ratio"] == pytest.approx(a["speech_ratio"], abs=0.05)


def test_stereo_channel_config_picks_the_customer(tmp_path):
    path = tmp_path / "stereo.wav"
    write_wav(path, np.stack((voice(8000, 1.0), np.zeros(8000))), 8000)

    (left_customer,) = messages_of(path, stereo_agent_channel=1)
    (right_customer,) = messages_of(path, stereo_agent_channel=0)

    assert left_customer["speech_ratio"] > 0.4
    assert left_customer["overlap_ratio"] == 0.0
    assert right_customer["speech_ratio"] == 0.0
    assert right_customer["rms_dbfs"] is None
    with pytest.raises(AudioInputError, match="pass 0 \\(left\\) or 1 \\(right\\)"):
        messages_of(path)


def test_stereo_agent_channel_published_on_request(tmp_path):
    path = tmp_path / "stereo.wav"
    write_wav(path, np.stack((voice(8000, 1.0), voice(8000, 1.0, f0_hz=110.0, seed=4))), 8000)

    messages = messages_of(path, stereo_agent_channel=1, channels=("customer", "agent"))

    assert [message["channel"] for message in messages] == ["customer", "agent"]
    assert messages[1]["pitch_hz"] == pytest.approx(110.0, abs=1.5)
    assert messages[0]["overlap_ratio"] == messages[1]["overlap_ratio"]
    assert messages[0]["event_id"] != messages[1]["event_id"]
    with pytest.raises(AudioInputError, match="eu privacy mode forbids"):
        messages_of(path, stereo_agent_channel=1, channels=("agent",), privacy_mode="eu")


def run_command(argv: list[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    stdout, stderr = io.StringIO(), io.StringIO()
    status = run(parser.parse_args(argv), stdout=stdout, stderr=stderr)
    return status, stdout.getvalue(), stderr.getvalue()


def test_command_writes_valid_deterministic_json_lines(shared_data):
    argv = [str(shared_data / ANGRY), "--agent-id", "a1", "--call-id", "c9", "--start-ts", "2026-03-02T10:00:00+01:00"]

    status, first, _ = run_command(argv)
    _, second, _ = run_command(argv)

    assert status == 0
    assert first == second
    messages = [json.loads(line) for line in first.splitlines()]
    assert_valid_messages(messages)
    assert [message["event_id"] for message in messages] == [
        "c9:audio:customer:1000ms:0",
        "c9:audio:customer:1000ms:1",
        "c9:audio:customer:1000ms:2",
    ]
    assert [message["ts"] for message in messages] == [
        "2026-03-02T09:00:01.000Z",
        "2026-03-02T09:00:02.000Z",
        "2026-03-02T09:00:02.272Z",
    ]


def test_command_treats_files_as_one_stream(tmp_path):
    y = voice(8000, 2.5)
    write_wav(tmp_path / "whole.wav", y, 8000)
    write_wav(tmp_path / "part1.wav", y[:7000], 8000)
    write_wav(tmp_path / "part2.wav", y[7000:], 8000)
    common = ["--agent-id", "a1", "--call-id", "c1", "--start-ts", START_TS]

    _, whole, _ = run_command([str(tmp_path / "whole.wav"), *common])
    _, parts, _ = run_command([str(tmp_path / "part1.wav"), str(tmp_path / "part2.wav"), *common])

    assert parts == whole
    assert len(whole.splitlines()) == 3


def test_command_reports_bad_input(tmp_path):
    status, out, err = run_command([str(tmp_path / "missing.wav"), "--agent-id", "a1", "--call-id", "c1"])

    assert status == 2
    assert out == ""
    assert err == f"agentload features: {tmp_path / 'missing.wav'} not found; pass the path of a WAV file\n"
