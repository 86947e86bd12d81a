"""Reading call recordings from WAV files for the feature extractor.

Accepted: mono or stereo WAV, 16-bit PCM, mu-law or A-law, at 8000 or 16000 Hz. Other sample rates
are rejected rather than resampled, because resampling changes the features and costs more than the
whole analysis; convert the file first (``sox in.wav -r 8000 out.wav``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from features.audio import SUPPORTED_SAMPLE_RATES, AudioInputError

SUPPORTED_SUBTYPES = {"PCM_16": "16-bit PCM", "ULAW": "mu-law", "ALAW": "A-law"}
BLOCK_S = 10.0


@dataclass(frozen=True, slots=True)
class WavLayout:
    """Which speaker each channel of a recording holds, in channel order."""

    sr: int
    channels: tuple[str, ...]
    frames: int


def channel_layout(n_channels: int, *, mono_channel: str = "customer", stereo_agent_channel: int | None = None) -> tuple[str, ...]:
    """Return the speaker of each channel of a mono or stereo recording.

    A mono recording is ``mono_channel``'s. A stereo recording needs ``stereo_agent_channel`` (0 or
    1): recorders differ, and guessing wrong would publish the agent's voice as the customer's.
    """
    if n_channels == 1:
        return (mono_channel,)
    if n_channels == 2:
        if stereo_agent_channel not in (0, 1):
            raise AudioInputError(
                f"stereo_agent_channel={stereo_agent_channel!r}: a stereo recording needs to say which channel "
                "is the agent's; pass 0 (left) or 1 (right)"
            )
        return ("agent", "customer") if stereo_agent_channel == 0 else ("customer", "agent")
    raise AudioInputError(f"the recording has {n_channels} channels; only mono and stereo are supported")


def inspect_wav(path: str | Path, *, mono_channel: str = "customer", stereo_agent_channel: int | None = None) -> WavLayout:
    """Check that ``path`` is a supported WAV file and return its layout, without reading samples."""
    try:
        info = soundfile.info(str(path))
    except (soundfile.LibsndfileError, RuntimeError) as exc:
        raise AudioInputError(f"cannot read {path} as audio ({exc}); send a WAV file") from None
    if info.format != "WAV":
        raise AudioInputError(f"{path} is {info.format_info}, not WAV; convert it to WAV first")
    if info.subtype not in SUPPORTED_SUBTYPES:
        raise AudioInputError(
            f"{path} is encoded as {info.subtype_info}; use {', '.join(SUPPORTED_SUBTYPES.values())} WAV"
        )
    if info.samplerate not in SUPPORTED_SAMPLE_RATES:
        raise AudioInputError(
            f"{path} has a sample rate of {info.samplerate} Hz; use 8000 or 16000 Hz audio "
            f"(resample first, e.g. sox {path} -r 8000 out.wav)"
        )
    channels = channel_layout(info.channels, mono_channel=mono_channel, stereo_agent_channel=stereo_agent_channel)
    return WavLayout(sr=info.samplerate, channels=channels, frames=info.frames)


def read_blocks(path: str | Path, *, block_s: float = BLOCK_S) -> Iterator[np.ndarray]:
    """Yield the samples of a WAV file in blocks of ``block_s`` seconds.

    Each block is a float64 array of shape ``(n_channels, n)`` with full scale at 1.0, in the
    layout :class:`features.audio.FeatureExtractor` takes.
    """
    with soundfile.SoundFile(str(path)) as sound:
        block_frames = max(1, round(block_s * sound.samplerate))
        for block in sound.blocks(blocksize=block_frames, dtype="float64", always_2d=True):
            yield block.T
