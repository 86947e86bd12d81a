"""The ``agentload features`` command: audio-features messages from call recordings.

The command reads one call's recording, given as one or more WAV files that are consecutive parts
of the call, and writes one audio-features message per window and published channel as JSON Lines.
Re-running it on the same files with the same options writes identical output, because
``event_id`` is built from the call, the channel, the window length and the window's index.

Privacy: the agent's voice is analysed only when asked with ``--channel agent``, and never in the
``eu`` privacy mode. Without it, a stereo recording's agent channel is used only for its speech
activity, which ``overlap_ratio`` on the customer's windows needs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

from features.audio import AudioInputError, FeatureExtractor, WindowFeatures, check_window_s
from features.wav import inspect_wav, read_blocks
from streams.events import InvalidEventError, format_ts, parse_ts

PRIVACY_MODES = ("default", "eu")
# Four decimals keep dB, Hz and ratios well inside their measurement error and the messages short.
VALUE_DECIMALS = 4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``agentload features`` to ``parser``."""
    parser.add_argument("files", nargs="+", metavar="FILE", help="WAV files of one call, in order")
    parser.add_argument("--agent-id", required=True, help="agent_id of the messages")
    parser.add_argument("--call-id", required=True, help="call_id of the messages")
    parser.add_argument(
        "--team-id",
        help="team_id of the messages; give it when publishing, so the messages reach the partition of the "
        "agent's call events",
    )
    parser.add_argument(
        "--to",
        metavar="BROKER",
        help="publish to the audio-features topic of this Kafka broker (host:port) instead of writing JSON Lines",
    )
    parser.add_argument("--topic-prefix", default="", help="prefix of the Kafka topic names, as for agentload worker")
    parser.add_argument(
        "--channel",
        action="append",
        choices=("customer", "agent"),
        help="mono files: whose voice the files hold (default customer). Stereo files: whose windows to "
        "write (default customer); repeat the option to write both. 'agent' analyses the agent's own "
        "voice and is rejected in the eu privacy mode",
    )
    parser.add_argument(
        "--stereo-agent-channel",
        type=int,
        choices=(0, 1),
        help="for stereo files, the channel holding the agent: 0 (left) or 1 (right); required for stereo",
    )
    parser.add_argument("--window-s", type=float, default=1.0, help="window length in seconds (default 1.0)")
    parser.add_argument(
        "--start-ts",
        help="RFC 3339 time of the first sample, e.g. 2026-03-02T09:15:00Z "
        "(default: the first file's modification time)",
    )
    parser.add_argument(
        "--privacy-mode",
        choices=PRIVACY_MODES,
        default=None,
        help="eu forbids analysing the agent's own voice (default: privacy.mode of the configuration)",
    )


def run(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Write the audio-features messages of ``args.files`` to ``stdout``; return the exit status.

    Bad input (a missing or unsupported file, a bad option) prints one error line to ``stderr``
    and returns 2.
    """
    stdout = stdout if stdout is not None else sys.stdout
    stderr = stderr if stderr is not None else sys.stderr
    try:
        messages = extract_messages(
            args.files,
            agent_id=args.agent_id,
            call_id=args.call_id,
            channels=tuple(args.channel or ("customer",)),
            stereo_agent_channel=args.stereo_agent_channel,
            window_s=args.window_s,
            start_ts=args.start_ts,
            privacy_mode=args.privacy_mode or "default",
        )
        team_id = getattr(args, "team_id", None)
        if team_id:
            messages = ({**message, "team_id": team_id} for message in messages)
        if getattr(args, "to", None):
            from features.audio import warm_up
            from streams.kafka_cli import publish

            # A publisher feeds a live pipeline: pay numba's compile time before the first window.
            warm_up()

            sent_events, sent_messages = publish(args.to, args.topic_prefix, messages)
            print(f"agentload features: published {sent_events} windows in {sent_messages} messages", file=stderr)
        else:
            write_json_lines(messages, stdout)
    except (AudioInputError, InvalidEventError, OSError) as exc:
        print(f"agentload features: {exc}", file=stderr)
        return 2
    return 0


def extract_messages(
    paths: Iterable[str | Path],
    *,
    agent_id: str,
    call_id: str,
    channels: tuple[str, ...] = ("customer",),
    stereo_agent_channel: int | None = None,
    window_s: float = 1.0,
    start_ts: str | None = None,
    privacy_mode: str = "default",
) -> Iterator[dict]:
    """Yield the audio-features messages of one call recorded in ``paths``, window by window.

    ``channels`` is the speaker of a mono recording, or the channels to publish from a stereo one.
    Every file is checked before the first message, so a bad file in the list yields nothing.
    """
    paths = [Path(path) for path in paths]
    if not paths:
        raise AudioInputError("no files given; pass one or more WAV files of the call")
    for name, value in (("agent_id", agent_id), ("call_id", call_id)):
        if not isinstance(value, str) or not value:
            raise AudioInputError(f"{name} must be a non-empty string, not {value!r}")
    window_s = check_window_s(window_s)
    check_privacy(channels, privacy_mode)

    layout = _check_layouts(paths, channels, stereo_agent_channel)
    publish = channels if len(layout.channels) == 2 else layout.channels
    start_s = parse_ts(start_ts, "--start-ts") if start_ts is not None else paths[0].stat().st_mtime
    extractor = FeatureExtractor(layout.sr, window_s=window_s, channels=layout.channels, publish=publish)
    return _stream_messages(paths, extractor, agent_id=agent_id, call_id=call_id, start_s=start_s)


def check_privacy(channels: Iterable[str], privacy_mode: str) -> None:
    """Raise unless the privacy mode allows analysing every channel in ``channels``."""
    if privacy_mode not in PRIVACY_MODES:
        raise AudioInputError(f"privacy mode {privacy_mode!r} is not valid; use one of {', '.join(PRIVACY_MODES)}")
    if privacy_mode == "eu" and "agent" in channels:
        raise AudioInputError(
            "the eu privacy mode forbids analysing the agent's own voice; drop --channel agent"
        )


def window_message(window: WindowFeatures, *, agent_id: str, call_id: str, start_s: float, window_s: float) -> dict:
    """Build the audio-features message of one window.

    ``start_s`` is the time of the stream's first sample in seconds since the Unix epoch; the
    message's ``ts`` is the window's end. ``window_s`` is the configured window length, which goes
    into ``event_id`` so that runs with different windows never share an id.
    """
    window_ms = round(window_s * 1000)
    message = {
        "event_id": f"{call_id}:audio:{window.channel}:{window_ms}ms:{window.index}",
        "agent_id": agent_id,
        "call_id": call_id,
        "ts": format_ts(start_s + window.end_s),
        "window_s": round(window.window_s, VALUE_DECIMALS),
        "channel": window.channel,
    }
    for name, value in window.values().items():
        message[name] = None if value is None else round(value, VALUE_DECIMALS)
    return message


def write_json_lines(messages: Iterable[dict], writer: TextIO) -> int:
    """Write each message as one line of compact JSON and return how many were written.

    This is the only output step, so another sink (a Kafka producer) can take the same messages.
    """
    count = 0
    for message in messages:
        writer.write(json.dumps(message, separators=(",", ":"), allow_nan=False))
        writer.write("\n")
        count += 1
    writer.flush()
    return count


def _check_layouts(paths: list[Path], channels: tuple[str, ...], stereo_agent_channel: int | None):
    if not channels or len(set(channels)) != len(channels):
        raise AudioInputError(f"--channel {channels!r}: name customer and/or agent, each once")
    first = None
    for path in paths:
        if not path.is_file():
            raise AudioInputError(f"{path} not found; pass the path of a WAV file")
        layout = inspect_wav(path, mono_channel=channels[0], stereo_agent_channel=stereo_agent_channel)
        if len(layout.channels) == 1 and len(channels) != 1:
            raise AudioInputError(
                f"{path} is mono, so it contains one speaker; pass --channel once (customer or agent)"
            )
        if first is None:
            first = layout
        elif (layout.sr, layout.channels) != (first.sr, first.channels):
            raise AudioInputError(
                f"{path} has {layout.sr} Hz and {len(layout.channels)} channel(s), but {paths[0]} has "
                f"{first.sr} Hz and {len(first.channels)}; the files of one call must match"
            )
    return first


def _stream_messages(
    paths: list[Path], extractor: FeatureExtractor, *, agent_id: str, call_id: str, start_s: float
) -> Iterator[dict]:
    for path in paths:
        for block in read_blocks(path):
            for window in extractor.push(block):
                yield window_message(
                    window, agent_id=agent_id, call_id=call_id, start_s=start_s, window_s=extractor.window_s
                )
    for window in extractor.flush():
        yield window_message(
            window, agent_id=agent_id, call_id=call_id, start_s=start_s, window_s=extractor.window_s
        )


def main(argv: list[str] | None = None) -> int:
    """Run the command on its own, for use before it is wired into ``agentload``."""
    parser = argparse.ArgumentParser(prog="agentload features", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
