"""Customer audio features as load factors, end to end from real clips through the engine."""

from __future__ import annotations

import pytest

from features.call_factors import FACTORS
from features.command import extract_messages
from streams.config import ConfigError, load_config
from streams.engine import Engine
from streams.events import format_ts, parse_ts, validate_any

ANGRY = "crema-d-speech/1001_DFA_ANG_XX.wav"
NEUTRAL = "crema-d-speech/1001_DFA_NEU_XX.wav"
CALL_START = "2026-03-02T10:00:00Z"


def call_with_audio(clip, channel: str = "customer") -> list[dict]:
    start = parse_ts(CALL_START)
    windows = list(
        extract_messages([clip], agent_id="a1", call_id="c1", start_ts=CALL_START, channels=(channel,))
    )
    for window in windows:
        window["channel"] = channel
    end = max(parse_ts(window["ts"]) for window in windows) + 1.0
    return [
        {"event_id": "start", "type": "call_started", "agent_id": "a1", "call_id": "c1", "ts": format_ts(start)},
        *windows,
        {"event_id": "end", "type": "call_ended", "agent_id": "a1", "call_id": "c1", "ts": format_ts(end)},
    ]


def load_after(documents: list[dict], overrides: dict | None = None) -> tuple[float, dict]:
    engine = Engine(load_config(overrides=overrides))
    for document in documents:
        engine.submit(validate_any(document))
    engine.flush()
    agent = engine.agents["a1"]
    return agent.load, dict(zip(FACTORS, agent.contributions()))


def test_angry_customer_raises_load_more_than_neutral(shared_data):
    angry_load, angry_factors = load_after(call_with_audio(shared_data / ANGRY))
    neutral_load, neutral_factors = load_after(call_with_audio(shared_data / NEUTRAL))

    assert angry_factors["customer_intensity"] > neutral_factors["customer_intensity"]
    assert angry_load > neutral_load
    assert angry_factors["customer_intensity"] > 0.0


def test_agent_channel_audio_is_never_a_factor(shared_data):
    documents = call_with_audio(shared_data / ANGRY, channel="agent")

    _, factors = load_after(documents)

    assert factors["customer_intensity"] == 0.0
    assert factors["talk_over"] == 0.0


def test_eu_mode_rejects_agent_voice_factors_at_start():
    with pytest.raises(ConfigError, match="Art. 5"):
        load_config(overrides={"privacy": {"mode": "eu", "agent_voice_factors": True}})
