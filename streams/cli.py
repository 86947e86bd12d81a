"""The ``agentload`` command."""

from __future__ import annotations

import argparse
import logging
import sys

from streams.config import ConfigError, load_config


def build_parser() -> argparse.ArgumentParser:
    from streams import embedded, kafka_cli, replay
    from streams.adapters import command as ingest

    parser = argparse.ArgumentParser(
        prog="agentload",
        description="Per-agent load index and recovery-break events for contact centers.",
    )
    parser.add_argument("--config", metavar="FILE", help="TOML configuration file (defaults: streams/defaults.toml)")
    parser.add_argument(
        "--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="log level (default INFO)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run_parser = commands.add_parser(
        "run", help="run the main job on the embedded runtime with the built-in floor simulator"
    )
    embedded.add_arguments(run_parser)
    run_parser.set_defaults(handler=embedded.run)

    replay_parser = commands.add_parser("replay", help="run the engine over a recorded file as fast as possible")
    replay.add_arguments(replay_parser)
    replay_parser.set_defaults(handler=replay.run)

    ingest_parser = commands.add_parser(
        "ingest", help="convert Amazon Connect, Twilio or Genesys events to canonical call-events JSON Lines"
    )
    ingest.add_arguments(ingest_parser)
    ingest_parser.set_defaults(handler=lambda args, config: ingest.run(args))

    for name, help_text, add_arguments, handler in (
        ("worker", "run a Faust worker: the engine over the Kafka input topics", kafka_cli.add_worker_arguments, kafka_cli.run_worker),
        ("topics", "create agentload's six Kafka topics", kafka_cli.add_topics_arguments, kafka_cli.run_topics),
        ("produce", "send a recorded file or the floor simulator's events to the Kafka input topics", kafka_cli.add_produce_arguments, kafka_cli.run_produce),
        ("tail", "print the messages of one agentload topic from its beginning", kafka_cli.add_tail_arguments, kafka_cli.run_tail),
    ):
        command_parser = commands.add_parser(name, help=help_text)
        add_arguments(command_parser)
        command_parser.set_defaults(handler=handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"agentload: {exc}", file=sys.stderr)
        return 2
    try:
        return args.handler(args, config)
    except BrokenPipeError:
        # The reader of our output went away (e.g. `| head`); that is not an error of ours.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
