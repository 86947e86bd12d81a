"""``agentload replay``: the engine over a recorded file, as fast as it can go."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO

from alerts.console import agent_summary_rows, format_agent_summary, format_transition
from streams import anonymous_bank
from streams.codec import break_cloudevent, dead_letter_record, dumps
from streams.config import Config
from streams.engine import Engine, Origin
from streams.events import decode, validate_call_event

FORMATS = ("auto", "jsonl", "anonymous-bank")


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
    stream = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8", newline="")
    with stream:
        lines = iter(stream)
        first = next(lines, "")
        fmt = args.format
        if fmt == "auto":
            fmt = "anonymous-bank" if first.startswith("vru+line") else "jsonl"
        source = args.file if args.file != "-" else "stdin"
        try:
            feed = _anonymous_bank(first, lines, args.utc_offset, source) if fmt == "anonymous-bank" else _jsonl(first, lines, source)
            return _replay(feed, config, args)
        except anonymous_bank.AnonymousBankError as exc:
            print(f"agentload replay: {source}: {exc}", file=sys.stderr)
            return 2


def _jsonl(first: str, lines: Iterator[str], source: str) -> Iterator[tuple[str, int, str]]:
    line_number = 1
    for line in _chain(first, lines):
        text = line.rstrip("\r\n")
        if text.strip():
            yield source, line_number, text
        line_number += 1


def _chain(first: str, lines: Iterator[str]) -> Iterable[str]:
    if first:
        yield first
    yield from lines


def _anonymous_bank(first: str, lines: Iterator[str], utc_offset: str, source: str):
    events, stats = anonymous_bank.read_calls(_chain(first, lines), utc_offset=utc_offset)
    print(
        f"{source}: {stats.rows} records, {stats.served_calls} served calls by {len(stats.agents)} agents; "
        f"{stats.zero_length_calls} shorter than a second, {stats.overlaps_cut} overlapping services cut",
        file=sys.stderr,
    )
    for index, document in enumerate(events):
        yield source, index, document


def _replay(feed, config: Config, args: argparse.Namespace) -> int:
    engine = Engine(config)
    out = sys.stdout
    dead_out: TextIO = open(args.dead_letters, "w", encoding="utf-8") if args.dead_letters else sys.stderr
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
    try:
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
    finally:
        if args.dead_letters:
            dead_out.close()

    if not args.json:
        out.write("\n" + format_agent_summary(agent_summary_rows(engine)) + "\n")
    if dead_count:
        where = args.dead_letters or "standard error"
        print(f"agentload replay: {dead_count} messages could not be used; see the dead letters in {where}", file=sys.stderr)
    return 0
