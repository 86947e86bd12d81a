"""The embedded runtime: one process, no broker, the floor simulator as its source.

``agentload run`` drives the engine from the seeded floor simulator at a chosen speed. Simulated
time is event time: each tick moves it on by the wall-clock time elapsed times ``speed``, feeds
the simulator's events to the engine, and advances the engine so offers expire and snapshots are
due even on a quiet floor. Break transitions print as they happen, a floor summary every few
seconds, and offers go back to the simulated agents, who accept or decline them. The HTTP port serves the
floor view and the agent view (see :mod:`alerts.floor`) beside ``/metrics``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import signal
import sys
import time
from collections.abc import Callable
from typing import TextIO

from aiohttp import web

from alerts.actions import engine_sink
from alerts.console import format_floor_summary, format_transition
from alerts.floor import FloorView, agent_link
from alerts.policy import CANCELLED, DECLINED, EXPIRED, SUGGESTED, Transition
from alerts.tokens import MIN_TOKEN_CHARS, TOKEN_ENV, TokenError, resolve_token
from alerts.webhook import WebhookConfigError, add_webhook_arguments, attach_webhook, check_webhook_options
from streams.codec import break_cloudevent, dead_letter_record, dumps
from streams.config import Config
from streams.engine import Engine, Origin
from streams.events import InvalidEventError, parse_ts, topic_of_document, validate_any
from streams.metrics import Metrics
from streams.simulator import FloorSimulator, SimulatorSettings
from streams.web import DEFAULT_HTTP_HOST, DEFAULT_HTTP_PORT, create_app, start_server

log = logging.getLogger("agentload.embedded")

# Wall-clock seconds between ticks.
TICK_WALL_S = 0.1
# Bounds that keep one tick's simulated events within memory and time.
MAX_SPEED = 36_000.0
MAX_AGENTS = 100_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--duration", type=float, default=0.0, metavar="S", help="stop after S wall-clock seconds (default: run until Ctrl-C)"
    )
    parser.add_argument(
        "--speed", type=float, default=60.0, help="simulated seconds per wall-clock second (default 60: a minute a second)"
    )
    parser.add_argument("--agents", type=int, default=48, help="number of simulated agents (default 48)")
    parser.add_argument("--team-size", type=int, default=12, help="agents per simulated team (default 12)")
    parser.add_argument("--seed", type=int, default=7, help="simulator seed; the same seed gives the same floor (default 7)")
    parser.add_argument(
        "--start", metavar="TS", help="simulated start time, RFC 3339 (default: now, to the minute)"
    )
    parser.add_argument(
        "--summary-every", type=float, default=10.0, metavar="S", help="wall-clock seconds between floor summaries (default 10)"
    )
    parser.add_argument("--json", action="store_true", help="print the recovery-breaks CloudEvents instead of readable lines")
    parser.add_argument(
        "--http-host", default=DEFAULT_HTTP_HOST, help=f"address of /metrics, /healthz, /readyz (default {DEFAULT_HTTP_HOST})"
    )
    parser.add_argument(
        "--http-port", type=int, default=DEFAULT_HTTP_PORT, help=f"port of the HTTP endpoints (default {DEFAULT_HTTP_PORT})"
    )
    parser.add_argument("--no-http", action="store_true", help="serve no HTTP endpoints")
    parser.add_argument(
        "--per-agent-metrics",
        action="store_true",
        help="also export agentload_agent_load per logged-in agent (one series per agent; off by default)",
    )
    parser.add_argument(
        "--token",
        help=f"access token of the floor view, at least {MIN_TOKEN_CHARS} characters "
        f"(default: ${TOKEN_ENV}, else a new random token printed at start)",
    )
    parser.add_argument(
        "--no-simulated-answers",
        action="store_true",
        help="simulated agents leave break offers open, so that you accept or decline them in the floor view and agent view",
    )
    add_webhook_arguments(parser)


class EmbeddedRuntime:
    """The engine, its simulated floor and its outputs, advanced tick by tick.

    ``on_transition`` callbacks (the console, the floor view) receive every break transition.
    """

    def __init__(self, engine: Engine, simulator: FloorSimulator, start_ts: float, metrics: Metrics | None = None):
        self.engine = engine
        self.simulator = simulator
        self.metrics = metrics
        self.now = start_ts
        self.started = False
        self.on_transition: list[Callable[[Transition], None]] = []
        self.on_dead_letter: list[Callable[[dict], None]] = []
        self.on_snapshot: list[Callable[[dict], None]] = []
        self._snapshot_interval_s = engine.config.runtime.snapshot_interval_s
        self._next_snapshot_at = start_ts

    def step(self, now: float) -> None:
        """Move simulated time on to ``now`` and deliver everything due."""
        self.now = now
        self.started = True
        engine = self.engine
        step_started = time.perf_counter()
        documents = self.simulator.events_until(now)
        for document in documents:
            document.pop("_t", None)
            topic = topic_of_document(document)
            # The value is serialized only if the event ends up as a dead letter (see _deliver).
            origin = Origin(topic, None, None, document["agent_id"], document)
            try:
                event = validate_any(document)
            except InvalidEventError as exc:
                engine.reject(str(exc), "invalid_event", origin)
                continue
            engine.submit(event, origin)
        engine.advance_to(now)
        self._deliver(step_started)
        if self.metrics is not None:
            self.metrics.received(len(documents))
            self.metrics.tick_duration_seconds.observe(time.perf_counter() - step_started)
        if now >= self._next_snapshot_at:
            snapshots = engine.snapshots(now - engine.config.runtime.lateness_s, self._snapshot_interval_s)
            for callback in self.on_snapshot:
                for snapshot in snapshots:
                    callback(snapshot)
            self._next_snapshot_at = now + min(self._snapshot_interval_s, engine.config.runtime.tick_interval_s)

    def _deliver(self, step_started: float) -> None:
        transitions = self.engine.drain_transitions()
        if transitions and self.metrics is not None:
            # The events behind these transitions were applied in this step.
            latency_s = time.perf_counter() - step_started
            for _ in transitions:
                self.metrics.decision_latency_seconds.observe(latency_s)
        for transition in transitions:
            if transition.type == SUGGESTED:
                self.simulator.offer(
                    transition.agent_id,
                    transition.break_id,
                    transition.time,
                    transition.offer_expires_at,
                    transition.recommended_break_s,
                )
            elif transition.type in (EXPIRED, CANCELLED, DECLINED):
                self.simulator.withdraw(transition.agent_id, transition.break_id)
            for callback in self.on_transition:
                callback(transition)
        dead_letters = self.engine.drain_dead_letters()
        if dead_letters:
            log.warning("%d %s sent to dead letters", len(dead_letters), "event" if len(dead_letters) == 1 else "events")
        for dead_letter in dead_letters:
            origin = dead_letter.origin
            if origin is not None and isinstance(origin.value, dict):
                origin.value = dumps(origin.value)
            record = dead_letter_record(dead_letter, time.time())
            for callback in self.on_dead_letter:
                callback(record)


def run(args: argparse.Namespace, config: Config) -> int:
    for name in ("speed", "duration", "summary_every"):
        value = getattr(args, name)
        if not math.isfinite(value) or value < 0 or (name == "speed" and value == 0):
            print(f"agentload run: --{name.replace('_', '-')} {value:g} is invalid; use a positive number", file=sys.stderr)
            return 2
    if args.speed > MAX_SPEED:
        print(f"agentload run: --speed {args.speed:g} is too fast; use at most {MAX_SPEED:g} (10 h of floor time a second)", file=sys.stderr)
        return 2
    if not 1 <= args.agents <= MAX_AGENTS or args.team_size < 1:
        print(f"agentload run: --agents must be from 1 to {MAX_AGENTS} and --team-size at least 1", file=sys.stderr)
        return 2
    if not 0 <= args.http_port <= 65535:
        print(f"agentload run: --http-port {args.http_port} is invalid; use a port from 1 to 65535", file=sys.stderr)
        return 2
    try:
        start_ts = parse_ts(args.start, "--start") if args.start else math.floor(time.time() / 60.0) * 60.0
    except InvalidEventError as exc:
        print(f"agentload run: {exc}", file=sys.stderr)
        return 2
    try:
        token, generated = resolve_token(args.token)
    except TokenError as exc:
        print(f"agentload run: {exc}", file=sys.stderr)
        return 2
    try:
        check_webhook_options(args)
    except WebhookConfigError as exc:
        print(f"agentload run: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_run(args, config, start_ts, token, generated))


async def _run(args: argparse.Namespace, config: Config, start_ts: float, token: str, token_generated: bool) -> int:
    settings = SimulatorSettings(
        agents=args.agents, team_size=args.team_size, seed=args.seed, answer_offers=not args.no_simulated_answers
    )
    simulator = FloorSimulator(settings, start_ts)
    engine = Engine(config)
    metrics = Metrics(per_agent=args.per_agent_metrics)
    metrics.watch(engine)
    runtime = EmbeddedRuntime(engine, simulator, start_ts, metrics)
    out: TextIO = sys.stdout
    source = config.runtime.event_source

    # Dead letters go to standard error as JSON Lines, where nothing else but logs goes.
    runtime.on_dead_letter.append(lambda record: print(dumps(record), file=sys.stderr, flush=True))
    if args.json:
        runtime.on_transition.append(lambda tr: print(dumps(break_cloudevent(tr, source)), file=out, flush=True))
    else:
        runtime.on_transition.append(lambda tr: print(format_transition(tr), file=out, flush=True))

    teams = len(set(simulator.team_of.values()))
    log.info(
        "started: %d simulated agents in %d teams, seed %d, %gx speed (one wall-clock second is %s of floor time)",
        args.agents,
        teams,
        args.seed,
        args.speed,
        _duration_words(args.speed),
    )

    runner = None
    if not args.no_http:
        runner = await _serve_floor_view(args, runtime, token, token_generated, out)
        if runner is None:
            return 2

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    webhook = await attach_webhook(runtime, args)
    wall_start = time.monotonic()
    next_summary = wall_start + args.summary_every if args.summary_every else math.inf
    try:
        while not stop.is_set():
            wall_now = time.monotonic()
            elapsed = wall_now - wall_start
            if args.duration and elapsed >= args.duration:
                break
            runtime.step(start_ts + elapsed * args.speed)
            if webhook is not None:
                await webhook.pump(stop)
            if wall_now >= next_summary and not args.json:
                print(format_floor_summary(engine, runtime.now), file=out, flush=True)
                next_summary += args.summary_every
            try:
                await asyncio.wait_for(stop.wait(), timeout=TICK_WALL_S)
            except asyncio.TimeoutError:
                pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        metrics.ready.set(0)
        if runner is not None:
            await runner.cleanup()
        if webhook is not None:
            await webhook.close()

    if not args.json:
        print(format_floor_summary(engine, runtime.now), file=out, flush=True)
    log.info("stopped after %.0f s of floor time", runtime.now - start_ts)
    return 0


async def _serve_floor_view(
    args: argparse.Namespace, runtime: EmbeddedRuntime, token: str, token_generated: bool, out: TextIO
) -> web.AppRunner | None:
    """Serve the floor view, metrics and health on one port; return None if the port is not free."""
    app = create_app(lambda: runtime.started)
    floor = FloorView(token, clock=lambda: runtime.now, sink=engine_sink(runtime.engine))
    runtime.on_snapshot.append(floor.state.on_snapshot)
    runtime.on_transition.append(floor.state.on_transition)
    floor.add_routes(app)
    try:
        runner = await start_server(app, args.http_host, args.http_port)
    except OSError as exc:
        print(
            f"agentload run: cannot serve HTTP on {args.http_host}:{args.http_port} ({exc.strerror}); "
            "pick a free port with --http-port, or pass --no-http",
            file=sys.stderr,
        )
        return None
    runtime.metrics.ready.set(1)
    # With --json, standard output carries only CloudEvents.
    _print_addresses(args, token, token_generated, runtime.simulator.agent_ids[0], sys.stderr if args.json else out)
    return runner


def _print_addresses(args: argparse.Namespace, token: str, token_generated: bool, agent_id: str, out: TextIO) -> None:
    host = f"[{args.http_host}]" if ":" in args.http_host else args.http_host
    base_url = f"http://{host}:{args.http_port}"
    if token_generated:
        print(f"floor view: {base_url}/?token={token}", file=out)
        print(f"  (a new token each run; set {TOKEN_ENV} or pass --token to keep one)", file=out)
    else:
        print(f"floor view: {base_url}/?token=<the token from --token or {TOKEN_ENV}>", file=out)
    print(f"agent view of {agent_id}: {agent_link(base_url, token, agent_id)}", file=out)
    print(f"  (other agents' links: {TOKEN_ENV}=<token> agentload agent-token AGENT_ID)", file=out, flush=True)


def _duration_words(speed: float) -> str:
    if speed >= 3600:
        return f"{speed / 3600:g} h"
    if speed >= 60:
        return f"{speed / 60:g} min"
    return f"{speed:g} s"
