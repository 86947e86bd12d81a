"""``agentload replay``: the engine over a recorded file, as fast as it can go."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Iterator
from typing import BinaryIO, TextIO

from alerts.console import agent_summary_rows, format_agent_summary, format_transition
from streams import anonymous_bank
from streams.codec import break_cloudevent, dead_letter_record, dumps
from streams.config import Config
from streams.engine import Engine, Origin
from streams.events import decode, validate_call_event

FORMATS = ("auto", "jsonl", "anonymous-bank")
UTF8_BOM = b"\xef\xbb\xbf"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="recorded events; - reads standard input")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="auto",
        help="jsonl: one canonical event (or packed array) per line; anonymous-bank: Technion call "
        "records; auto: anonymous-bank when the first line is its CSV header (default)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="write only the recovery-breaks CloudEvents to standard output, one per line",
    )
    parser.add_argument(
        "--utc-offset",
        default="+03:00",
        help="UTC offset of the local times in anonymous-bank records (default +03:00, Israel in August 1999)",
    )
    parser.add_argument(
        "--dead-letters",
        metavar="FILE",
        help="write dead letters as JSON Lines to FILE instead of standard error",
    )


def run(args: argparse.Namespace, config: Config) -> int:
    source = args.file if args.file != "-" else "stdin"
    try:
        stream = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")
    except OSError as exc:
        print(f"agentload replay: cannot read {args.file!r}: {exc.strerror}", file=sys.stderr)
        return 2
    if args.dead_letters:
        try:
            dead_out = open(args.dead_letters, "w", encoding="utf-8")
        except OSError as exc:
            print(f"agentload replay: cannot write dead letters to {args.dead_letters!r}: {exc.strerror}", file=sys.stderr)
            return 2
    else:
        dead_out = sys.stderr

    with stream:
        try:
            return _replay(read_input(stream, args.format, args.utc_offset, source), config, args, dead_out)
        except anonymous_bank.AnonymousBankError as exc:
            print(f"agentload replay: {source}: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"agentload replay: cannot read {args.file!r}: {exc.strerror}", file=sys.stderr)
            return 2
        finally:
            if args.dead_letters:
                dead_out.close()


def read_input(stream: BinaryIO, fmt: str, utc_offset: str, source: str) -> Iterator[tuple[str, int, bytes | dict]]:
    """Read a JSON Lines or Anonymous Bank file as ``(source, line or row number, item)``.

    ``fmt`` is ``auto``, ``jsonl`` or ``anonymous-bank``; ``auto`` looks at the first line. A
    JSON Lines item is the line's undecoded bytes, so that a line that is not UTF-8 or not JSON
    can become a dead letter. An Anonymous Bank item is a call event. A leading UTF-8 byte order
    mark is dropped. Raises AnonymousBankError for an Anonymous Bank file that cannot be read.
    """
    lines = iter(stream)
    first = next(lines, b"").removeprefix(UTF8_BOM)
    if fmt == "auto":
        fmt = "anonymous-bank" if first.startswith(b"vru+line") else "jsonl"
    if fmt == "anonymous-bank":
        return _anonymous_bank(first, lines, utc_offset, source)
    return _jsonl(first, lines, source)


def _jsonl(first: bytes, lines: Iterator[bytes], source: str) -> Iterator[tuple[str, int, bytes]]:
    # Lines stay bytes: the decoder turns a line that is not UTF-8 into a dead letter.
    line_number = 1
    for line in _chain(first, lines):
        text = line.rstrip(b"\r\n")
        if text.strip():
            yield source, line_number, text
        line_number += 1


def _chain(first: bytes, lines: Iterator[bytes]) -> Iterable[bytes]:
    if first:
        yield first
    yield from lines


def _anonymous_bank(first: bytes, lines: Iterator[bytes], utc_offset: str, source: str):
    try:
        text_lines = [line.decode("utf-8") for line in _chain(first, lines)]
    except UnicodeDecodeError as exc:
        raise anonymous_bank.AnonymousBankError(f"the file is not UTF-8 text ({exc}); convert it to UTF-8") from None
    events, stats = anonymous_bank.read_calls(text_lines, utc_offset=utc_offset)
    print(
        f"{source}: {stats.rows} records, {stats.served_calls} served calls by {len(stats.agents)} agents; "
        f"{stats.zero_length_calls} shorter than a second, {stats.overlaps_cut} overlapping services cut",
        file=sys.stderr,
    )
    for index, document in enumerate(events):
        yield source, index, document


def _replay(feed, config: Config, args: argparse.Namespace, dead_out: TextIO) -> int:
    engine = Engine(config)
    out = sys.stdout
    dead_count = 0
    event_source = config.runtime.event_source

    def emit() -> None:
        nonlocal dead_count
        for transition in engine.drain_transitions():
            if args.json:
                out.write(dumps(break_cloudevent(transition, event_source)) + "\n")
            else:
                out.write(format_transition(transition) + "\n")
        for dead_letter in engine.drain_dead_letters():
            dead_count += 1
            dead_out.write(dumps(dead_letter_record(dead_letter, time.time(), default_topic=source_name)) + "\n")

    source_name = "replay"
    for source_name, position, item in feed:
        if isinstance(item, dict):
            # Records converted in memory are valid by construction, but are checked all the same.
            origin = Origin(source_name, None, position, None, dumps(item))
            try:
                engine.submit(validate_call_event(item), origin)
            except ValueError as exc:
                engine.reject(str(exc), "invalid_event", origin)
        else:
            origin = Origin(source_name, None, position, None, item)
            events, invalid = decode(None, item)
            for bad in invalid:
                reason = "invalid_json" if bad.error.startswith("message is not") else "invalid_event"
                engine.reject(bad.error, reason, Origin(source_name, None, position, None, bad.value))
            for event in events:
                engine.submit(event, origin)
        emit()
    engine.flush()
    emit()

    if not args.json:
        out.write("\n" + format_agent_summary(agent_summary_rows(engine)) + "\n")
    _report_counts(engine, dead_count, args.dead_letters)
    return 0


def _report_counts(engine: Engine, dead_count: int, dead_letters_path: str | None) -> None:
    """Print to standard error what happened to the input beyond normal processing."""
    outcomes: dict[str, int] = {}
    for (_, outcome), count in engine.counts.items():
        outcomes[outcome] = outcomes.get(outcome, 0) + count
    notes = []
    for outcome, words in (("duplicate", "duplicates dropped"), ("late", "applied late"), ("ignored", "ignored by design")):
        if outcomes.get(outcome):
            notes.append(f"{outcomes[outcome]} {words}")
    if notes:
        lateness_s = engine.config.runtime.lateness_s
        print(
            f"agentload replay: {', '.join(notes)} (events beyond the {lateness_s:g} s lateness bound are applied late)",
            file=sys.stderr,
        )
    if dead_count:
        where = dead_letters_path or "standard error"
        print(f"agentload replay: {dead_count} messages could not be used; see the dead letters in {where}", file=sys.stderr)
