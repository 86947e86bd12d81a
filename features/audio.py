"""Per-window audio features of call audio, computed on streaming chunks.

A :class:`FeatureExtractor` takes the samples of one call as they arrive, in chunks of any size,
and returns one :class:`WindowFeatures` per window and published channel. Every window is analysed
from a buffer of the same layout, so feeding a recording in arbitrary chunks gives exactly the same
windows and values as feeding it whole.

Analysis grid
    Frames are ``FRAME_S`` (32 ms) long and start every ``HOP_S`` (10 ms). A frame belongs to the
    window in which it *ends*, so a window is analysed as soon as its last sample arrives and no
    look-ahead is needed. The first frames of a stream end at 32 ms, so the first window holds a
    few frames fewer than the others. The last window of a stream may be shorter than ``window_s``,
    and its message then carries its real length in ``window_s``.

Speech activity
    Each frame's level is the RMS of its samples after removing the frame's mean (so a DC offset
    does not count as sound), in dBFS. The noise floor is the quietest frame level in the last
    ``NOISE_FLOOR_S`` seconds of the channel, ignoring digital silence (frames below
    ``DIGITAL_SILENCE_DBFS``). A frame is speech when its level is at least ``speech_margin_db``
    above that floor and at least ``speech_min_dbfs``.

Voicing and pitch
    ``librosa.yin`` estimates f0 per frame. A speech frame is voiced when the normalised
    autocorrelation of the frame at the yin period is at least ``VOICING_MIN_CORRELATION``.
    ``pitch_hz`` is the median f0 of the voiced frames and ``pitch_sd_st`` a robust spread of it.
    ``rms_dbfs`` is the level of the window's speech frames only, so that pauses do not lower it.

Undefined values are ``None``: a window without speech has no ``rms_dbfs``, a window with fewer
than ``MIN_VOICED_FRAMES`` voiced frames has no pitch, and ``overlap_ratio`` needs both channels.
Non-finite samples (NaN, inf) are treated as missing: frames that contain one are left out of
every feature and of the ratios' denominators.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from functools import lru_cache

import librosa
import numpy as np

from streams.events import AUDIO_FEATURE_NAMES, CHANNELS

SUPPORTED_SAMPLE_RATES = (8000, 16000)
# The audio-features contract defines the channels (CHANNELS) and the feature names.
FEATURE_NAMES = AUDIO_FEATURE_NAMES

FRAME_S = 0.032
HOP_S = 0.010
WINDOW_S_RANGE = (0.1, 60.0)

# C2 and roughly the top of a raised voice. 32 ms frames hold two periods of 65 Hz, which keeps
# sr / fmin below frame_length / 2 at both sample rates, as yin needs.
FMIN_HZ = 65.0
FMAX_HZ = 600.0
# NOTE: the voicing, speech and onset thresholds below were set by inspecting a few CREMA-D and
# Free Spoken Digit clips, not tuned on real telephone calls.
VOICING_MIN_CORRELATION = 0.6
MIN_VOICED_FRAMES = 10

NOISE_FLOOR_S = 5.0
DIGITAL_SILENCE_DBFS = -100.0
SPEECH_MARGIN_DB = 10.0
SPEECH_MIN_DBFS = -50.0
# mu-law's largest code decodes to 32124 / 32768 = 0.9803 of full scale, so a lower level than
# PCM's 0.9999 is needed to see clipping in both encodings.
CLIP_LEVEL = 0.98

# Onsets: spectral flux of a 40-band log-mel spectrum from 100 Hz (above mains hum and DC), as the
# mean rise in dB per band between consecutive frames.
N_MELS = 40
MEL_FMIN_HZ = 100.0
ONSET_FLUX_DB = 2.0
ONSET_MIN_GAP_S = 0.1

_LEVEL_FLOOR_DBFS = -120.0
_POWER_FLOOR = 10.0 ** (_LEVEL_FLOOR_DBFS / 10.0)
_SEMITONES_PER_OCTAVE = 12.0
_MAD_TO_SD = 1.4826


class AudioInputError(ValueError):
    """Audio or an analysis parameter that the feature extractor cannot use."""


@dataclass(frozen=True, slots=True)
class WindowFeatures:
    """Features of one channel over one window.

    ``index`` counts windows from the start of the stream; ``end_s`` is the window's end in seconds
    from the first sample and ``window_s`` its length, shorter than the configured length only for
    the last window of a stream. Feature values are finite floats or ``None``.
    """

    channel: str
    index: int
    end_s: float
    window_s: float
    rms_dbfs: float | None
    pitch_hz: float | None
    pitch_sd_st: float | None
    voiced_ratio: float | None
    speech_ratio: float | None
    overlap_ratio: float | None
    onset_rate_hz: float | None
    clipped_ratio: float | None

    def values(self) -> dict[str, float | None]:
        """Return the feature values keyed by the names of the audio-features contract."""
        return {name: getattr(self, name) for name in FEATURE_NAMES}


@dataclass(frozen=True, slots=True)
class _Grid:
    sr: int
    window: int
    frame_length: int
    hop_length: int
    first_frame_end: int


@dataclass(slots=True)
class _FrameActivity:
    valid: np.ndarray
    level_dbfs: np.ndarray
    speech: np.ndarray


class _ChannelState:
    """State that one channel carries from one window to the next."""

    __slots__ = ("floor_minima", "previous_mel_db", "previous_flux", "last_onset_frame")

    def __init__(self, floor_windows: int):
        self.floor_minima: deque[float] = deque(maxlen=floor_windows)
        self.previous_mel_db: np.ndarray | None = None
        self.previous_flux = 0.0
        self.last_onset_frame = -(10**9)


def check_sample_rate(sr: object) -> int:
    """Return ``sr`` as an int, or raise :class:`AudioInputError` unless it is 8000 or 16000 Hz."""
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or int(sr) not in SUPPORTED_SAMPLE_RATES:
        raise AudioInputError(
            f"sr={sr!r} Hz is not supported; use 8000 or 16000 Hz audio "
            "(resample first, e.g. sox in.wav -r 8000 out.wav)"
        )
    return int(sr)


def check_window_s(window_s: object) -> float:
    """Return ``window_s`` as a float, or raise unless it is within range and a multiple of ``HOP_S``."""
    low, high = WINDOW_S_RANGE
    if isinstance(window_s, bool) or not isinstance(window_s, (int, float)) or not math.isfinite(window_s):
        raise AudioInputError(f"window_s={window_s!r} must be a number of seconds from {low:g} to {high:g}")
    if not low <= window_s <= high:
        raise AudioInputError(f"window_s={window_s!r} is out of range; use {low:g} to {high:g} seconds")
    hops = window_s / HOP_S
    if abs(hops - round(hops)) > 1e-6:
        raise AudioInputError(
            f"window_s={window_s!r} is not a multiple of the {HOP_S * 1000:g} ms analysis hop; "
            f"use e.g. {round(hops) * HOP_S:g}"
        )
    return round(hops) * HOP_S


def _make_grid(sr: int, window_s: float) -> _Grid:
    hop_length = round(HOP_S * sr)
    frame_length = round(FRAME_S * sr)
    hops_to_first_end = -(-frame_length // hop_length)
    return _Grid(
        sr=sr,
        window=round(window_s / HOP_S) * hop_length,
        frame_length=frame_length,
        hop_length=hop_length,
        first_frame_end=hops_to_first_end * hop_length,
    )


@lru_cache(maxsize=4)
def _mel_basis(sr: int, n_fft: int) -> np.ndarray:
    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=N_MELS, fmin=MEL_FMIN_HZ, dtype=np.float64)


@lru_cache(maxsize=4)
def _hann(frame_length: int) -> np.ndarray:
    return librosa.filters.get_window("hann", frame_length, fftbins=True)[:, np.newaxis]


class FeatureExtractor:
    """Streaming per-window audio features of one call.

    Push the call's samples as they arrive with :meth:`push`, and call :meth:`flush` once at the end
    to get the last, possibly shorter, window. Both return the windows completed by that call, in
    order, one :class:`WindowFeatures` per published channel.

    Privacy: the agent channel's voice is analysed only when ``"agent"`` is in ``publish``.
    Otherwise only its speech activity is computed, to measure ``overlap_ratio`` on the customer's
    windows, and no window of the agent channel is returned.

    Parameters
    ----------
    sr : int
        sample rate of the audio in Hz, 8000 or 16000.
    window_s : float
        window length in seconds, from 0.1 to 60, a multiple of ``HOP_S`` (0.01 s).
    channels : tuple of str
        speaker of each input channel, in order: ``"customer"`` and/or ``"agent"``.
    publish : tuple of str or None
        channels whose windows are returned. ``None`` means the customer channel only.
    speech_margin_db : float
        how far above the noise floor, in dB, a frame must be to count as speech.
    speech_min_dbfs : float
        lowest level, in dBFS, of a speech frame, whatever the noise floor.

    Examples
    --------
    >>> extractor = FeatureExtractor(8000, window_s=1.0)
    >>> windows = extractor.push(chunk)  # chunk: float array of shape (n,), values in [-1, 1]
    >>> windows += extractor.flush()
    """

    def __init__(
        self,
        sr: int,
        *,
        window_s: float = 1.0,
        channels: tuple[str, ...] = ("customer",),
        publish: tuple[str, ...] | None = None,
        speech_margin_db: float = SPEECH_MARGIN_DB,
        speech_min_dbfs: float = SPEECH_MIN_DBFS,
    ):
        self.sr = check_sample_rate(sr)
        self.window_s = check_window_s(window_s)
        self.channels = _check_channels(channels)
        self.publish = _check_publish(publish, self.channels)
        if not isinstance(speech_margin_db, (int, float)) or not 0.0 < speech_margin_db <= 60.0:
            raise AudioInputError(f"speech_margin_db={speech_margin_db!r} must be a number of dB in (0, 60]")
        if not isinstance(speech_min_dbfs, (int, float)) or not -100.0 <= speech_min_dbfs <= 0.0:
            raise AudioInputError(f"speech_min_dbfs={speech_min_dbfs!r} must be a level in dBFS from -100 to 0")
        self.speech_margin_db = float(speech_margin_db)
        self.speech_min_dbfs = float(speech_min_dbfs)

        self._grid = _make_grid(self.sr, self.window_s)
        floor_windows = max(1, math.ceil(NOISE_FLOOR_S / self.window_s - 1e-9))
        self._states = [_ChannelState(floor_windows) for _ in self.channels]
        # Samples not yet consumed by a window, plus the frame context the next window needs;
        # _buffer_start is the stream position of the buffer's first sample.
        self._buffer = np.zeros((len(self.channels), 0), dtype=np.float64)
        self._buffer_start = 0
        self._next_window = 0
        self._flushed = False

    @property
    def samples_seen(self) -> int:
        """Number of samples per channel pushed so far."""
        return self._buffer_start + self._buffer.shape[1]

    def push(self, y: np.ndarray) -> list[WindowFeatures]:
        """Add samples and return the windows they complete.

        Parameters
        ----------
        y : np.ndarray [shape=(n,) for one channel, or (n_channels, n)]
            floating-point samples with full scale at 1.0, channels in the order of ``channels``.
            Non-finite samples are treated as missing.

        Returns
        -------
        list of WindowFeatures
            the completed windows, oldest first, one entry per published channel.
        """
        if self._flushed:
            raise AudioInputError("this stream was already flushed; start a new FeatureExtractor per call")
        samples = self._check_samples(y)
        if samples.shape[1]:
            self._buffer = np.concatenate((self._buffer, samples), axis=1)

        results: list[WindowFeatures] = []
        while self.samples_seen >= (self._next_window + 1) * self._grid.window:
            results.extend(self._analyse_window((self._next_window + 1) * self._grid.window))
        self._trim_buffer()
        return results

    def flush(self) -> list[WindowFeatures]:
        """End the stream and return its last window, shorter than ``window_s``, if samples remain."""
        if self._flushed:
            return []
        self._flushed = True
        if self.samples_seen <= self._next_window * self._grid.window:
            return []
        return self._analyse_window(self.samples_seen)

    def _check_samples(self, y: object) -> np.ndarray:
        if not isinstance(y, np.ndarray):
            raise AudioInputError(f"y must be a numpy array of samples, not {type(y).__name__}")
        if not np.issubdtype(y.dtype, np.floating):
            raise AudioInputError(
                f"y has dtype {y.dtype}; convert it to floating point with full scale at 1.0 "
                "(e.g. samples / 32768 for 16-bit PCM)"
            )
        n_channels = len(self.channels)
        if y.ndim == 1 and n_channels == 1:
            return y[np.newaxis, :].astype(np.float64, copy=False)
        if y.ndim == 2 and y.shape[0] == n_channels:
            return y.astype(np.float64, copy=False)
        raise AudioInputError(
            f"y has shape {y.shape}, but the extractor expects {n_channels} channel(s) {self.channels}; "
            f"pass shape (n,) for one channel or ({n_channels}, n)"
        )

    def _trim_buffer(self) -> None:
        # Keep the samples of the next window's first frame that fall before the window starts.
        keep_from = max(0, self._next_window * self._grid.window + self._grid.hop_length - self._grid.frame_length)
        drop = keep_from - self._buffer_start
        if drop > 0:
            self._buffer = self._buffer[:, drop:].copy()
            self._buffer_start = keep_from

    def _analyse_window(self, end: int) -> list[WindowFeatures]:
        grid = self._grid
        start = self._next_window * grid.window
        first_end = max(start + grid.hop_length, grid.first_frame_end)
        last_end = end - end % grid.hop_length
        n_frames = max(0, (last_end - first_end) // grid.hop_length + 1)

        window_samples = self._buffer[:, start - self._buffer_start : end - self._buffer_start]
        frame_buffer = None
        if n_frames:
            frame_buffer = self._buffer[
                :, first_end - grid.frame_length - self._buffer_start : last_end - self._buffer_start
            ]

        activities = []
        for channel_index in range(len(self.channels)):
            if frame_buffer is None:
                activities.append(None)
            else:
                activities.append(self._frame_activity(channel_index, frame_buffer[channel_index]))

        overlap_ratio = _overlap_ratio(activities) if len(self.channels) == 2 else None
        end_s = end / grid.sr
        window_s = (end - start) / grid.sr
        first_frame_index = first_end // grid.hop_length

        results = []
        for channel_index, channel in enumerate(self.channels):
            if channel not in self.publish:
                continue
            activity = activities[channel_index]
            values = _empty_values()
            values["clipped_ratio"] = clipped_ratio(window_samples[channel_index])
            values["overlap_ratio"] = overlap_ratio
            if activity is not None:
                values.update(
                    self._voice_features(
                        channel_index, frame_buffer[channel_index], activity, first_frame_index
                    )
                )
            results.append(
                WindowFeatures(channel=channel, index=self._next_window, end_s=end_s, window_s=window_s, **values)
            )

        self._next_window += 1
        return results

    def _frame_activity(self, channel_index: int, buffer: np.ndarray) -> _FrameActivity:
        grid = self._grid
        finite = np.isfinite(buffer)
        if finite.all():
            samples = buffer
            valid = np.ones(1 + (buffer.shape[0] - grid.frame_length) // grid.hop_length, dtype=bool)
        else:
            samples = np.where(finite, buffer, 0.0)
            valid = librosa.util.frame(finite, frame_length=grid.frame_length, hop_length=grid.hop_length).all(
                axis=0
            )

        level_dbfs = frame_levels_dbfs(samples, frame_length=grid.frame_length, hop_length=grid.hop_length)
        floor_dbfs = self._update_noise_floor(channel_index, level_dbfs[valid])
        threshold = self.speech_min_dbfs
        if floor_dbfs is not None:
            threshold = max(threshold, floor_dbfs + self.speech_margin_db)
        speech = valid & (level_dbfs >= threshold)
        return _FrameActivity(valid=valid, level_dbfs=level_dbfs, speech=speech)

    def _update_noise_floor(self, channel_index: int, level_dbfs: np.ndarray) -> float | None:
        minima = self._states[channel_index].floor_minima
        audible = level_dbfs[level_dbfs > DIGITAL_SILENCE_DBFS]
        minima.append(float(audible.min()) if audible.size else math.inf)
        floor = min(minima)
        return floor if math.isfinite(floor) else None

    def _voice_features(
        self, channel_index: int, buffer: np.ndarray, activity: _FrameActivity, first_frame_index: int
    ) -> dict[str, float | None]:
        grid = self._grid
        state = self._states[channel_index]
        samples = np.where(np.isfinite(buffer), buffer, 0.0)
        samples = samples - samples.mean()
        frames = librosa.util.frame(samples, frame_length=grid.frame_length, hop_length=grid.hop_length)
        n_valid = int(activity.valid.sum())

        values: dict[str, float | None] = {}
        if n_valid == 0:
            state.previous_mel_db = None
            return values

        speech = activity.speech
        n_speech = int(speech.sum())
        values["speech_ratio"] = n_speech / n_valid
        if n_speech:
            power = np.power(10.0, activity.level_dbfs[speech] / 10.0)
            values["rms_dbfs"] = float(10.0 * np.log10(power.mean()))

        voiced = np.zeros_like(speech)
        f0_hz = None
        if n_speech:
            f0_hz = librosa.yin(
                samples,
                fmin=FMIN_HZ,
                fmax=FMAX_HZ,
                sr=grid.sr,
                frame_length=grid.frame_length,
                hop_length=grid.hop_length,
                center=False,
            )
            voiced[speech] = periodicity(frames[:, speech], f0_hz[speech], sr=grid.sr) >= VOICING_MIN_CORRELATION
        values["voiced_ratio"] = int(voiced.sum()) / n_valid
        if f0_hz is not None and int(voiced.sum()) >= MIN_VOICED_FRAMES:
            values["pitch_hz"], values["pitch_sd_st"] = pitch_summary(f0_hz[voiced])

        onsets = self._count_onsets(state, frames, activity, first_frame_index)
        values["onset_rate_hz"] = onsets / (n_valid * HOP_S)
        return values

    def _count_onsets(
        self, state: _ChannelState, frames: np.ndarray, activity: _FrameActivity, first_frame_index: int
    ) -> int:
        grid = self._grid
        spectrum = np.abs(np.fft.rfft(frames * _hann(grid.frame_length), axis=0)) ** 2
        mel_db = librosa.power_to_db(_mel_basis(grid.sr, grid.frame_length) @ spectrum, ref=1.0, top_db=None)

        previous = state.previous_mel_db
        if previous is None:
            previous = mel_db[:, :1]
        rises = np.diff(np.concatenate((previous, mel_db), axis=1), axis=1)
        flux_db = np.maximum(rises, 0.0).mean(axis=0)
        # A frame with a missing sample has no usable spectrum, and neither has the rise into it.
        flux_db[~activity.valid] = 0.0
        state.previous_mel_db = mel_db[:, -1:] if activity.valid[-1] else None

        min_gap_frames = round(ONSET_MIN_GAP_S / HOP_S)
        before = np.concatenate(([state.previous_flux], flux_db[:-1]))
        candidates = np.flatnonzero((flux_db >= ONSET_FLUX_DB) & (before < ONSET_FLUX_DB) & activity.speech)
        count = 0
        for offset in candidates:
            frame_index = first_frame_index + int(offset)
            if frame_index - state.last_onset_frame >= min_gap_frames:
                state.last_onset_frame = frame_index
                count += 1
        state.previous_flux = float(flux_db[-1])
        return count


def frame_levels_dbfs(y: np.ndarray, *, frame_length: int, hop_length: int) -> np.ndarray:
    """Compute the level of each frame after removing the frame's mean.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        finite samples, full scale at 1.0.
    frame_length, hop_length : int > 0
        frame length and hop in samples; frames start at ``y[t * hop_length]`` (no padding).

    Returns
    -------
    np.ndarray [shape=(n_frames,)]
        RMS level in dBFS, where 0 dBFS is an RMS of 1.0 (a full-scale sine reads -3.01 dBFS).
        Digital silence reads -120 dBFS.
    """
    frames = librosa.util.frame(y, frame_length=frame_length, hop_length=hop_length)
    power = frames.var(axis=0)
    return 10.0 * np.log10(np.maximum(power, _POWER_FLOOR))


def periodicity(frames: np.ndarray, f0_hz: np.ndarray, *, sr: int) -> np.ndarray:
    """Compute each frame's normalised autocorrelation at the period of its f0.

    Parameters
    ----------
    frames : np.ndarray [shape=(frame_length, n_frames)]
        frames of zero-mean samples.
    f0_hz : np.ndarray [shape=(n_frames,)]
        fundamental frequency of each frame in Hz, e.g. from ``librosa.yin``.
    sr : int
        sample rate in Hz.

    Returns
    -------
    np.ndarray [shape=(n_frames,)]
        correlation in [-1, 1] between the frame and itself shifted by one period; 0 where the frame
        is silent or the period does not fit in the frame.
    """
    frame_length, n_frames = frames.shape
    if n_frames == 0:
        return np.zeros(0)
    lag = np.clip(np.rint(sr / f0_hz).astype(np.int64), 1, frame_length - 1)
    positions = np.arange(frame_length)[:, np.newaxis]
    overlaps = positions < (frame_length - lag)[np.newaxis, :]
    shifted_index = np.minimum(positions + lag[np.newaxis, :], frame_length - 1)
    head = np.where(overlaps, frames, 0.0)
    tail = np.where(overlaps, np.take_along_axis(frames, shifted_index, axis=0), 0.0)

    energy = np.sqrt((head * head).sum(axis=0) * (tail * tail).sum(axis=0))
    correlation = (head * tail).sum(axis=0)
    return np.divide(correlation, energy, out=np.zeros(n_frames), where=energy > 0.0)


def pitch_summary(f0_hz: np.ndarray) -> tuple[float, float]:
    """Return the median f0 in Hz and a robust standard deviation of f0 in semitones.

    The deviation is 1.4826 times the median absolute deviation, which equals the standard deviation
    for normally distributed pitch, so that yin's occasional octave errors do not dominate it.

    Parameters
    ----------
    f0_hz : np.ndarray [shape=(n,)], n >= 1
        f0 of the voiced frames in Hz, all positive.
    """
    median_hz = float(np.median(f0_hz))
    semitones = _SEMITONES_PER_OCTAVE * np.log2(f0_hz / median_hz)
    return median_hz, float(_MAD_TO_SD * np.median(np.abs(semitones)))


def clipped_ratio(y: np.ndarray, *, clip_level: float = CLIP_LEVEL) -> float | None:
    """Return the share of finite samples whose magnitude reaches ``clip_level``.

    ``None`` when ``y`` contains no finite sample.
    """
    finite = y[np.isfinite(y)]
    if finite.size == 0:
        return None
    return float(np.count_nonzero(np.abs(finite) >= clip_level)) / finite.size


def _overlap_ratio(activities: list[_FrameActivity | None]) -> float | None:
    first, second = activities
    if first is None or second is None:
        return None
    valid = first.valid & second.valid
    n_valid = int(valid.sum())
    if n_valid == 0:
        return None
    return int((first.speech & second.speech & valid).sum()) / n_valid


def _empty_values() -> dict[str, float | None]:
    return {name: None for name in FEATURE_NAMES}


def _check_channels(channels: object) -> tuple[str, ...]:
    if isinstance(channels, str) or not isinstance(channels, (tuple, list)):
        raise AudioInputError(f"channels={channels!r} must be a tuple such as ('customer',) or ('customer', 'agent')")
    channels = tuple(channels)
    if not 1 <= len(channels) <= 2 or len(set(channels)) != len(channels) or not set(channels) <= set(CHANNELS):
        raise AudioInputError(
            f"channels={channels!r} is not valid; name each input channel once, as 'customer' or 'agent'"
        )
    return channels


def _check_publish(publish: object, channels: tuple[str, ...]) -> tuple[str, ...]:
    if publish is None:
        if "customer" not in channels:
            raise AudioInputError(
                "the only input channel is the agent's, whose voice is not analysed unless asked; "
                "pass publish=('agent',) to analyse it"
            )
        return ("customer",)
    if isinstance(publish, str) or not isinstance(publish, (tuple, list)):
        raise AudioInputError(f"publish={publish!r} must be a tuple such as ('customer',)")
    publish = tuple(publish)
    unknown = [channel for channel in publish if channel not in channels]
    if not publish or unknown:
        raise AudioInputError(f"publish={publish!r} must name one or more of the input channels {channels}")
    return publish


def warm_up() -> None:
    """Run the whole analysis once per sample rate on synthetic audio.

    The first call of ``librosa.yin`` compiles numba code, which takes up to seconds; call this at
    start-up so that the first real window is not late. Set ``NUMBA_CACHE_DIR`` to a writable folder
    to keep the compiled code between runs.
    """
    for sr in SUPPORTED_SAMPLE_RATES:
        t = np.arange(sr) / sr
        tone = 0.3 * np.sin(2.0 * np.pi * 150.0 * t) * (t > 0.3)
        noise = 0.001 * np.random.default_rng(0).standard_normal(sr)
        stereo = np.stack((tone + noise, noise))
        extractor = FeatureExtractor(sr, window_s=0.5, channels=("customer", "agent"), publish=("customer", "agent"))
        extractor.push(stereo)
        extractor.flush()
