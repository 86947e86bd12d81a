"""The ``agentload`` command."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from streams.config import ConfigError, load_config


def build_parser() -> argparse.ArgumentParser:
    from features import command as features
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
    parser.add_argument(
        "--log-format",
        default="text",
        choices=("text", "json"),
        help="text lines, or one JSON object per line for log collectors (default text)",
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

    features_parser = commands.add_parser(
        "features", help="compute audio-features messages from call audio (WAV) as JSON Lines"
    )
    features.add_arguments(features_parser)
    features_parser.set_defaults(handler=_run_features)

    token_parser = commands.add_parser(
        "agent-token", help="print the link that opens one agent's own view of a running floor view"
    )
    _add_agent_token_arguments(token_parser)
    token_parser.set_defaults(handler=lambda args, config: _agent_token(args))

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


def _run_features(args: argparse.Namespace, config) -> int:
    from features import command as features

    # The configuration's eu mode cannot be loosened from the command line.
    if args.privacy_mode is None or config.privacy.mode == "eu":
        args.privacy_mode = config.privacy.mode
    return features.run(args)


class JsonLogFormatter(logging.Formatter):
    """Format a log record as one JSON object: time, level, logger, message, and error if any."""

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            document["error"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False)

    converter = time.gmtime


def _add_agent_token_arguments(parser: argparse.ArgumentParser) -> None:
    from alerts.tokens import TOKEN_ENV
    from streams.web import DEFAULT_HTTP_HOST, DEFAULT_HTTP_PORT

    parser.add_argument("agent_id", metavar="AGENT_ID", help="the agent whose link to print")
    parser.add_argument("--token", help=f"the floor view's token, as given to agentload run (default: ${TOKEN_ENV})")
    parser.add_argument("--http-host", default=DEFAULT_HTTP_HOST, help=f"host of the floor view (default {DEFAULT_HTTP_HOST})")
    parser.add_argument(
        "--http-port", type=int, default=DEFAULT_HTTP_PORT, help=f"port of the floor view (default {DEFAULT_HTTP_PORT})"
    )


def _agent_token(args: argparse.Namespace) -> int:
    import os

    from alerts.floor import agent_link
    from alerts.tokens import TOKEN_ENV, TokenError, check_token

    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV)
    if not token:
        print(
            f"agentload agent-token: no token; pass --token or set {TOKEN_ENV} to the token the floor view runs with",
            file=sys.stderr,
        )
        return 2
    try:
        check_token(token)
    except TokenError as exc:
        print(f"agentload agent-token: {exc}", file=sys.stderr)
        return 2
    print(agent_link(f"http://{args.http_host}:{args.http_port}", token, args.agent_id))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    if args.log_format == "json":
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=args.log_level, handlers=[handler])
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
