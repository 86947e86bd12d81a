"""``agentload ingest``: convert a file of native platform events into canonical call events.

The input is one JSON document, a JSON array of documents, or JSON Lines, read from a file or
stdin. Canonical events go to stdout as JSON Lines; dead letters go to stderr or to
``--dead-letters`` as JSON Lines in the dead-letters contract: the input as ``source_topic``, the
document's position as ``offset``, the original ``value``, the ``error`` and ``received_at``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Iterator
from typing import IO

from streams.adapters.amazon_connect import AmazonConnectAdapter
from streams.adapters.base import DEFAULT_LATENESS_S, Adapter, parse_flag_rule
from streams.codec import dead_letter_record, dumps
from streams.engine import DeadLetter, Origin
from streams.adapters.genesys import GenesysCloudAdapter
from streams.adapters.twilio import TwilioTaskRouterAdapter

log = logging.getLogger(__name__)

PLATFORMS = ("amazon-connect", "twilio", "genesys")

EXIT_OK = 0
EXIT_DEAD_LETTERS = 1
EXIT_USAGE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``ingest`` options to ``parser``."""
    parser.add_argument("--from", dest="platform", required=True, choices=PLATFORMS,
                        help="platform that produced the input")
    parser.add_argument("input", metavar="FILE", help="file of native events, or - for stdin")
    parser.add_argument("--dead-letters", metavar="FILE",
                        help="write dead letters to FILE as JSON Lines instead of stderr")
    parser.add_argument("--lateness-s", type=float, default=DEFAULT_LATENESS_S,
                        help="how late, in seconds of event time, an agent event may arrive and still "
                             f"be applied in order (default {DEFAULT_LATENESS_S:g})")
    parser.add_argument("--category-flag", action="append", default=[], metavar="NAME=FLAG[:SPEAKER]",
                        help="amazon-connect: raise FLAG when Contact Lens matches category NAME (repeatable)")
    parser.add_argument("--rule-flag", action="append", default=[], metavar="NAME=FLAG[:SPEAKER]",
                        help="amazon-connect: raise FLAG when Contact Lens rule NAME matches (repeatable)")
    parser.add_argument("--team-attribute", default="team",
                        help="twilio: worker attribute that holds the team (default team)")


def build_adapter(args: argparse.Namespace) -> Adapter:
    """Build the adapter that ``args`` asks for; raise ValueError on an invalid option."""
    if args.platform == "amazon-connect":
        return AmazonConnectAdapter(
            lateness_s=args.lateness_s,
            category_flags=dict(parse_flag_rule(text) for text in args.category_flag),
            rule_flags=dict(parse_flag_rule(text) for text in args.rule_flag),
        )
    if args.category_flag or args.rule_flag:
        raise ValueError("--category-flag and --rule-flag apply to --from amazon-connect only")
    if args.platform == "twilio":
        return TwilioTaskRouterAdapter(lateness_s=args.lateness_s, team_attribute=args.team_attribute or None)
    return GenesysCloudAdapter(lateness_s=args.lateness_s)


def read_documents(stream: IO[str]) -> Iterator[tuple[object, str | None]]:
    """Yield (document, None) for each input document, or (raw text, error) for unreadable input.

    JSON Lines are recognised by a first line that is a JSON object on its own, and are then read
    line by line, so that a live pipe converts as it goes. Anything else is read whole as JSON
    documents or arrays one after another; the text from the first invalid one on is one error.
    """
    first = ""
    for line in stream:
        if line.strip():
            first = line
            break
    if not first:
        return

    try:
        first_document = json.loads(first)
    except ValueError:
        first_document = None
    if isinstance(first_document, dict):
        yield first_document, None
        for number, line in enumerate(stream, start=2):
            if not line.strip():
                continue
            try:
                yield json.loads(line), None
            except ValueError as exc:
                yield line.rstrip("\n"), f"line {number} is not valid JSON ({exc}); send one JSON object per line"
        return

    # Read whole: one document, an array, or several pretty-printed documents one after another.
    text = first + stream.read()
    decoder = json.JSONDecoder()
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            return
        try:
            document, position = decoder.raw_decode(text, position)
        except ValueError as exc:
            yield text[position:], (
                f"input is not valid JSON ({exc}); send one JSON document, a JSON array of documents, "
                "or JSON Lines with one document per line"
            )
            return
        if isinstance(document, list):
            yield from ((item, None) for item in document)
        else:
            yield document, None


def run(args: argparse.Namespace) -> int:
    """Convert the input named by ``args``; return 0, 1 if anything went to dead letters, 2 on usage errors."""
    try:
        adapter = build_adapter(args)
    except ValueError as exc:
        print(f"agentload ingest: {exc}", file=sys.stderr)
        return EXIT_USAGE

    try:
        source = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8")
    except OSError as exc:
        print(f"agentload ingest: cannot read {args.input!r} ({exc.strerror}); give a readable file or -", file=sys.stderr)
        return EXIT_USAGE
    try:
        dead_sink = open(args.dead_letters, "a", encoding="utf-8") if args.dead_letters else sys.stderr
    except OSError as exc:
        print(f"agentload ingest: cannot write dead letters to {args.dead_letters!r} ({exc.strerror})", file=sys.stderr)
        return EXIT_USAGE

    counts = {"documents": 0, "events": 0, "dead_letters": 0}

    def write(events: list[dict], dead: list[tuple[str, object]]) -> None:
        for event in events:
            sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
        source_name = "stdin" if args.input == "-" else args.input
        for error, value in dead:
            text = value if isinstance(value, (str, bytes)) else dumps(value)
            reason = "invalid_json" if isinstance(value, (str, bytes)) else "invalid_event"
            origin = Origin(source_name, None, counts["documents"], None, text)
            letter = dead_letter_record(DeadLetter(error, reason, origin), time.time())
            letter["platform"] = args.platform
            dead_sink.write(dumps(letter) + "\n")
        counts["events"] += len(events)
        counts["dead_letters"] += len(dead)

    try:
        for document, error in read_documents(source):
            counts["documents"] += 1
            if error is not None:
                write([], [(error, document)])
                continue
            write(*adapter.convert(document))
        write(*adapter.flush())
    except UnicodeDecodeError as exc:
        write([], [(f"input is not UTF-8 text ({exc}); send UTF-8 encoded JSON", args.input)])
    finally:
        sys.stdout.flush()
        if source is not sys.stdin:
            source.close()
        if dead_sink is not sys.stderr:
            dead_sink.close()

    log.info(
        "converted %d %s documents into %d call events; %d dead letters; ignored: %s",
        counts["documents"], args.platform, counts["events"], counts["dead_letters"], dict(adapter.ignored) or "none",
    )
    if counts["dead_letters"]:
        log.warning("%d %s documents went to dead letters", counts["dead_letters"], args.platform)
        return EXIT_DEAD_LETTERS
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run ``ingest`` on its own, for use before it is hooked into the ``agentload`` command."""
    parser = argparse.ArgumentParser(prog="agentload ingest", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
