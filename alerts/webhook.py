"""Delivery of recovery-break CloudEvents to an HTTP webhook: signed, retried, in order per agent.

Each CloudEvent is POSTed in structured mode (``Content-Type: application/cloudevents+json``) with
two headers:

- ``X-Agentload-Signature: t=<unix seconds>,v1=<hex>``, where ``<hex>`` is
  HMAC-SHA256(secret, ``f"{t}.{body}"``) over the exact body bytes. Every attempt signs again with
  a fresh ``t``, so a receiver can reject replays older than its tolerance with
  :func:`verify_signature`.
- ``Idempotency-Key: <CloudEvent id>``. A retry after a timeout may deliver an event twice; the
  receiver drops the repeat by this key.

Events of one agent (the CloudEvent ``subject``) are delivered strictly in order: the next one is
sent only after the previous one was delivered or dead-lettered. Different agents proceed
independently, up to ``concurrency`` requests at once. An event goes to the dead-letter callback
after ``max_attempts`` failures, or at once on a response that no retry can fix (a 4xx other than
408, 425 and 429). The agent's later events then continue, because holding them back would stall
that agent for good on one bad event, and the dead-letter record keeps the event for a replay.

Usage::

    sink = WebhookSink("https://wfm.example/agentload", secret, on_dead_letter=records.append)
    await sink.start()
    await sink.send(cloudevent)      # waits while the queue is full
    report = await sink.close()      # drains, then dead-letters what is left
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import ipaddress
import logging
import math
import os
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from alerts.policy import Transition
from streams.codec import break_cloudevent, dumps
from streams.events import format_ts

log = logging.getLogger("agentload.webhook")

SIGNATURE_HEADER = "X-Agentload-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json"
SECRET_ENV = "AGENTLOAD_WEBHOOK_SECRET"
# RFC 2104 discourages HMAC keys shorter than the hash output, 32 bytes for SHA-256.
MIN_SECRET_CHARS = 32
DEFAULT_TOLERANCE_S = 300.0

# Statuses worth another try: the receiver is overloaded, restarting, or asked us to slow down.
RETRYABLE_CLIENT_STATUSES = frozenset((408, 425, 429))


class SignatureError(ValueError):
    """A webhook signature that is missing, malformed, wrong or outside the replay tolerance."""


class WebhookConfigError(ValueError):
    """A webhook URL, secret or option that cannot be used."""


class WebhookClosedError(RuntimeError):
    """An event sent to a sink that is closing or closed."""


class Counter(Protocol):
    """Anything with ``inc``, such as a ``prometheus_client.Counter`` without labels."""

    def inc(self, amount: float = 1) -> None: ...


# Signing ----------------------------------------------------------------------------------------


def sign(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """Return the ``X-Agentload-Signature`` value of ``body`` sent at ``timestamp`` (Unix seconds)."""
    digest = hmac.new(_key(secret), str(timestamp).encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    secret: str | bytes, header: str | None, body: bytes, tolerance_s: float = DEFAULT_TOLERANCE_S, now: float | None = None
) -> None:
    """Check a ``X-Agentload-Signature`` header against ``body``; raise :class:`SignatureError` if it fails.

    ``tolerance_s`` bounds how far ``t`` may be from ``now`` (default: the wall clock) in either
    direction, so a captured request cannot be replayed later. Several ``v1`` entries are allowed
    (one per secret while a secret is rotated); any match passes. The digests are compared in
    constant time.
    """
    if not header:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    timestamp = None
    digests = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureError(f"{SIGNATURE_HEADER} part {part.strip()!r} is not name=value")
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError(f"{SIGNATURE_HEADER} timestamp {value!r} is not whole Unix seconds") from None
        elif name == "v1":
            digests.append(value)
    if timestamp is None or not digests:
        raise SignatureError(f"{SIGNATURE_HEADER} needs both t= and v1=, got {header!r}")

    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance_s:
        raise SignatureError(
            f"{SIGNATURE_HEADER} timestamp {timestamp} is {now - timestamp:+.0f} s from now, "
            f"outside the tolerance of {tolerance_s:g} s; reject it as a replay or fix the sender's clock"
        )

    expected = sign(secret, body, timestamp).partition(",v1=")[2]
    if not any(hmac.compare_digest(expected.encode("ascii"), digest.encode("ascii", "replace")) for digest in digests):
        raise SignatureError(f"{SIGNATURE_HEADER} does not match the body; the body was changed or the secret differs")


def _key(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


# Backoff ----------------------------------------------------------------------------------------


def backoff_delay_s(
    retry: int, base_delay_s: float, max_delay_s: float, rand: Callable[[], float] = random.random
) -> float:
    """Return the wait before retry number ``retry`` (1 for the first retry), with full jitter.

    The cap grows as ``base_delay_s * 2 ** (retry - 1)`` up to ``max_delay_s`` and the wait is
    uniform in [0, cap), so many senders that failed together do not retry together. ``rand``
    returns floats in [0, 1); tests pass a fixed one.
    """
    if retry < 1:
        raise ValueError(f"retry {retry} is invalid; retries are numbered from 1")
    # The exponent is capped so a long outage cannot overflow the float.
    cap_s = min(max_delay_s, base_delay_s * 2.0 ** min(retry - 1, 62))
    return rand() * cap_s


def backoff_schedule_s(
    max_attempts: int, base_delay_s: float, max_delay_s: float, rand: Callable[[], float] = random.random
) -> list[float]:
    """Return the waits between ``max_attempts`` attempts, ``max_attempts - 1`` of them."""
    return [backoff_delay_s(retry, base_delay_s, max_delay_s, rand) for retry in range(1, max_attempts)]


# URLs -------------------------------------------------------------------------------------------


def redact_url(url: str) -> str:
    """Return ``url`` without user info, query and fragment, which may carry credentials."""
    parts = urlsplit(url)
    # The raw host and port, so that a URL with an invalid port can still be shown in its error.
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def check_webhook_url(url: str, allow_insecure: bool = False) -> str:
    """Return ``url`` if it is usable: HTTPS, or plain HTTP to a loopback host, or ``allow_insecure``.

    Raises :class:`WebhookConfigError` naming the URL (without credentials) and the fix.
    """
    try:
        parts = urlsplit(url)
        parts.port
    except ValueError as exc:
        raise WebhookConfigError(
            f"webhook URL {redact_url(url)!r} is invalid ({exc}); use https://host[:port]/path"
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookConfigError(
            f"webhook URL {redact_url(url)!r} is invalid; use an absolute https:// URL, e.g. https://wfm.example/agentload"
        )
    if parts.scheme == "http" and not allow_insecure and not is_loopback_host(parts.hostname):
        raise WebhookConfigError(
            f"webhook URL {redact_url(url)!r} uses plain http to a host that is not loopback; "
            "use https://, or pass --webhook-insecure to send break events unencrypted"
        )
    return url


def is_loopback_host(host: str) -> bool:
    """Return True for ``localhost`` and for loopback IP addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# The sink ---------------------------------------------------------------------------------------


@dataclass
class WebhookDeadLetter:
    """An event the sink gave up on: the CloudEvent, where it went, why it failed, and how often."""

    event: dict
    url: str
    error: str
    attempts: int
    failed_at: float

    def to_record(self) -> dict:
        """Return the dead letter as a JSON-ready dict; ``url`` carries no credentials."""
        return {
            "event": self.event,
            "url": self.url,
            "error": self.error,
            "attempts": self.attempts,
            "failed_at": format_ts(self.failed_at),
        }


@dataclass
class CloseReport:
    """Counts of a sink's outcomes over its life, returned by :meth:`WebhookSink.close`."""

    delivered: int
    dead_lettered: int
    # Events still queued or in flight when the drain timed out; they were dead-lettered too.
    left_at_close: int


@dataclass
class _Item:
    event: dict
    body: bytes
    attempts: int = 0
    last_error: str = ""


@dataclass
class _Outcome:
    delivered: bool
    retryable: bool
    error: str = ""
    retry_after_s: float | None = None


@dataclass
class WebhookCounters:
    """Optional counter hooks; none of them has labels, and none is per agent."""

    delivered: Counter | None = None
    retries: Counter | None = None
    dead_lettered: Counter | None = None


class WebhookSink:
    """A queue of CloudEvents POSTed to one URL, in order per agent, with retries and dead letters.

    ``send`` waits while ``max_queued`` events are queued or in flight. Up to ``concurrency``
    agents have a request in flight at once, one request per agent. Each attempt times out after
    ``timeout_s``. Retries wait :func:`backoff_delay_s`, or longer when the receiver sends
    ``Retry-After`` in seconds (never beyond ``max_delay_s``). ``on_dead_letter`` receives a
    :class:`WebhookDeadLetter` for every event given up on.
    """

    def __init__(
        self,
        url: str,
        secret: str | bytes,
        *,
        on_dead_letter: Callable[[WebhookDeadLetter], None],
        max_attempts: int = 8,
        base_delay_s: float = 0.5,
        max_delay_s: float = 30.0,
        timeout_s: float = 10.0,
        concurrency: int = 4,
        max_queued: int = 10_000,
        counters: WebhookCounters | None = None,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
    ):
        problems = []
        for name, value in (("max_attempts", max_attempts), ("concurrency", concurrency), ("max_queued", max_queued)):
            if value < 1:
                problems.append(f"{name} {value} is invalid; use at least 1")
        for name, value in (("base_delay_s", base_delay_s), ("max_delay_s", max_delay_s), ("timeout_s", timeout_s)):
            if not value > 0:
                problems.append(f"{name} {value} is invalid; use a positive number of seconds")
        if not secret:
            problems.append("the webhook secret is empty; set a random secret the receiver also knows")
        if problems:
            raise WebhookConfigError("; ".join(problems))

        self.url = url
        self.redacted_url = redact_url(url)
        self._secret = _key(secret)
        self._on_dead_letter = on_dead_letter
        self.max_attempts = max_attempts
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.timeout_s = timeout_s
        self.concurrency = concurrency
        self.max_queued = max_queued
        self._counters = counters or WebhookCounters()
        self._rand = rand
        self._clock = clock

        # Events not yet finished, per agent, oldest first. An agent is a key here exactly while
        # it is either in ``_ready`` or being served by a worker, never both.
        self._pending: dict[str, deque[_Item]] = {}
        self._ready: asyncio.Queue[str] = asyncio.Queue()
        self._queued = 0
        self._room = asyncio.Condition()
        # FIFO among waiting senders, so events sent by concurrent callers keep their order.
        self._send_lock = asyncio.Lock()
        self._idle = asyncio.Event()
        self._idle.set()
        self._workers: list[asyncio.Task] = []
        self._session: aiohttp.ClientSession | None = None
        self._closing = False

        self.delivered = 0
        self.dead_lettered = 0
        self.retries = 0
        # Consecutive failed attempts across all agents, for one WARNING per outage.
        self._failing_attempts = 0

    @property
    def queued(self) -> int:
        """Events accepted and not yet delivered or dead-lettered."""
        return self._queued

    async def start(self) -> None:
        """Open the HTTP session and start the workers."""
        if self._session is not None:
            return
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        self._workers = [asyncio.create_task(self._work(), name=f"webhook-{index}") for index in range(self.concurrency)]
        log.info(
            "webhook sink started: %s, %d concurrent requests, %d attempts per event",
            self.redacted_url,
            self.concurrency,
            self.max_attempts,
        )

    async def send(self, event: dict) -> None:
        """Queue ``event`` for delivery, waiting while the queue is full."""
        async with self._send_lock:
            async with self._room:
                await self._room.wait_for(lambda: self._queued < self.max_queued or self._closing)
            self._enqueue(event)

    def try_send(self, event: dict) -> bool:
        """Queue ``event`` if there is room and no sender is waiting; return False otherwise."""
        if self._send_lock.locked() or self._queued >= self.max_queued:
            if self._closing:
                raise self._closed_error(event)
            return False
        self._enqueue(event)
        return True

    async def wait_for_room(self) -> None:
        """Wait until ``send`` would not wait."""
        async with self._room:
            await self._room.wait_for(lambda: self._queued < self.max_queued or self._closing)

    def _enqueue(self, event: dict) -> None:
        if self._closing:
            raise self._closed_error(event)
        if self._session is None:
            raise WebhookClosedError("webhook sink is not started; await sink.start() first")
        agent_id = event.get("subject")
        if not isinstance(agent_id, str) or not agent_id:
            raise ValueError(
                f"CloudEvent {event.get('id')!r} has no subject; the subject is the agent_id that orders delivery"
            )

        item = _Item(event, dumps(event).encode("utf-8"))
        self._queued += 1
        self._idle.clear()
        queue = self._pending.get(agent_id)
        if queue is None:
            self._pending[agent_id] = deque((item,))
            self._ready.put_nowait(agent_id)
        else:
            queue.append(item)

    def _closed_error(self, event: dict) -> WebhookClosedError:
        return WebhookClosedError(
            f"webhook sink for {self.redacted_url} is closed; event {event.get('id')!r} was not queued"
        )

    async def close(self, drain_timeout_s: float = 10.0) -> CloseReport:
        """Stop taking events, deliver what is queued within ``drain_timeout_s``, then stop.

        Events still queued or in flight at the deadline go to the dead-letter callback with the
        error that the sink closed, so no event is dropped silently. An event cut off in flight
        may still have reached the receiver; its ``Idempotency-Key`` lets a later replay be dropped.
        """
        self._closing = True
        async with self._room:
            self._room.notify_all()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=drain_timeout_s)
        except asyncio.TimeoutError:
            pass

        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

        left = 0
        for queue in self._pending.values():
            for item in queue:
                left += 1
                error = f"the sink closed after draining for {drain_timeout_s:g} s"
                if item.last_error:
                    error += f"; last error: {item.last_error}"
                self._dead_letter(item, error)
        self._pending.clear()
        self._queued = 0

        if self._session is not None:
            await self._session.close()
            self._session = None
        if left:
            log.warning("webhook sink closed with %d events undelivered; they went to dead letters", left)
        log.info(
            "webhook sink stopped: %d delivered, %d dead-lettered, %d retries",
            self.delivered,
            self.dead_lettered,
            self.retries,
        )
        return CloseReport(self.delivered, self.dead_lettered, left)

    # Workers ------------------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            agent_id = await self._ready.get()
            queue = self._pending[agent_id]
            item = queue[0]
            try:
                await self._deliver(item)
            except Exception as exc:
                # Anything unexpected must not kill the worker and strand the queued events.
                log.exception("webhook event %s: delivery failed unexpectedly", item.event.get("id"))
                self._dead_letter(item, f"unexpected {type(exc).__name__}: {exc}")

            queue.popleft()
            self._queued -= 1
            if queue:
                # Back of the line, so one busy agent cannot starve the others.
                self._ready.put_nowait(agent_id)
            else:
                del self._pending[agent_id]
            if self._queued == 0:
                self._idle.set()
            async with self._room:
                self._room.notify_all()

    async def _deliver(self, item: _Item) -> None:
        """Try ``item`` until it is delivered, dead-lettered, or the worker is cancelled."""
        event_id = item.event.get("id")
        while True:
            item.attempts += 1
            outcome = await self._attempt(item)
            if outcome.delivered:
                self.delivered += 1
                _inc(self._counters.delivered)
                if self._failing_attempts:
                    log.info(
                        "webhook %s is accepting events again after %d failed attempts",
                        self.redacted_url,
                        self._failing_attempts,
                    )
                    self._failing_attempts = 0
                return

            item.last_error = outcome.error
            self._failing_attempts += 1
            if self._failing_attempts == 1:
                log.warning(
                    "webhook %s failed (%s); retrying up to %d attempts per event, and logging again when it recovers",
                    self.redacted_url,
                    outcome.error,
                    self.max_attempts,
                )
            if not outcome.retryable or item.attempts >= self.max_attempts:
                self._dead_letter(item, outcome.error)
                return

            delay_s = backoff_delay_s(item.attempts, self.base_delay_s, self.max_delay_s, self._rand)
            if outcome.retry_after_s is not None:
                delay_s = min(max(delay_s, outcome.retry_after_s), self.max_delay_s)
            self.retries += 1
            _inc(self._counters.retries)
            log.debug(
                "webhook event %s: attempt %d of %d failed (%s); retrying in %.3f s",
                event_id,
                item.attempts,
                self.max_attempts,
                outcome.error,
                delay_s,
            )
            await asyncio.sleep(delay_s)

    async def _attempt(self, item: _Item) -> _Outcome:
        timestamp = int(self._clock())
        headers = {
            "Content-Type": CLOUDEVENTS_CONTENT_TYPE,
            SIGNATURE_HEADER: sign(self._secret, item.body, timestamp),
            IDEMPOTENCY_HEADER: str(item.event.get("id")),
        }
        assert self._session is not None
        try:
            async with self._session.post(self.url, data=item.body, headers=headers, allow_redirects=False) as response:
                # Read the body so the connection can be reused, but keep none of it.
                await response.read()
                status = response.status
                retry_after_s = _retry_after_s(response.headers.get("Retry-After"))
        except asyncio.TimeoutError:
            return _Outcome(False, True, f"timed out after {self.timeout_s:g} s")
        except aiohttp.ClientError as exc:
            return _Outcome(False, True, f"{type(exc).__name__}: {exc}")

        if 200 <= status < 300:
            return _Outcome(True, False)
        retryable = status >= 500 or status in RETRYABLE_CLIENT_STATUSES
        return _Outcome(False, retryable, f"HTTP {status}", retry_after_s)

    def _dead_letter(self, item: _Item, error: str) -> None:
        self.dead_lettered += 1
        _inc(self._counters.dead_lettered)
        dead_letter = WebhookDeadLetter(item.event, self.redacted_url, error, item.attempts, self._clock())
        log.warning(
            "webhook event %s for agent %s sent to dead letters after %d attempts: %s",
            item.event.get("id"),
            item.event.get("subject"),
            item.attempts,
            error,
        )
        try:
            self._on_dead_letter(dead_letter)
        except Exception:
            # A failing callback must not stop delivery of the other agents' events.
            log.exception("webhook dead-letter callback failed for event %s", item.event.get("id"))


def _retry_after_s(value: str | None) -> float | None:
    """Return a ``Retry-After`` given in seconds; the HTTP-date form is ignored."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _inc(counter: Counter | None) -> None:
    if counter is not None:
        counter.inc()


# The embedded runtime ---------------------------------------------------------------------------


def add_webhook_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``--webhook-*`` options of ``agentload run``."""
    parser.add_argument(
        "--webhook-url",
        metavar="URL",
        help=f"POST every recovery-breaks CloudEvent to URL, signed with the secret in ${SECRET_ENV}",
    )
    parser.add_argument(
        "--webhook-insecure", action="store_true", help="allow plain http:// to a host that is not loopback"
    )
    parser.add_argument(
        "--webhook-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds before one webhook request times out (default 10)",
    )
    parser.add_argument(
        "--webhook-max-attempts",
        type=int,
        default=8,
        metavar="N",
        help="attempts per event before it is dead-lettered (default 8)",
    )
    parser.add_argument(
        "--webhook-dead-letters",
        metavar="FILE",
        help="append events the webhook gave up on to FILE as JSON Lines (default: write them to the log at WARNING)",
    )


class RuntimeWebhook:
    """A :class:`WebhookSink` fed by the embedded runtime's synchronous transition callbacks.

    Transitions are staged as CloudEvents during a step and handed to the sink by :meth:`pump`
    between steps, so a full queue pauses the simulation loop instead of dropping events. At most
    one step's transitions wait beyond the sink's ``max_queued``.
    """

    def __init__(self, sink: WebhookSink, source: str, on_dead_letter: Callable[[WebhookDeadLetter], None]):
        self.sink = sink
        self.source = source
        self._on_dead_letter = on_dead_letter
        self._staged: deque[dict] = deque()

    def on_transition(self, transition: Transition) -> None:
        self._staged.append(break_cloudevent(transition, self.source))

    async def pump(self, stop: asyncio.Event | None = None) -> None:
        """Hand staged events to the sink in order, waiting for room; return early once ``stop`` is set."""
        while self._staged:
            if self.sink.try_send(self._staged[0]):
                self._staged.popleft()
                continue
            if stop is None:
                await self.sink.wait_for_room()
                continue
            room = asyncio.create_task(self.sink.wait_for_room())
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait((room, stopped), return_when=asyncio.FIRST_COMPLETED)
            room.cancel()
            stopped.cancel()
            if stop.is_set():
                return

    async def close(self, drain_timeout_s: float = 10.0) -> CloseReport:
        """Queue what is staged as far as room allows, drain, and dead-letter the rest."""
        while self._staged and self.sink.try_send(self._staged[0]):
            self._staged.popleft()
        report = await self.sink.close(drain_timeout_s)

        left = len(self._staged)
        for event in self._staged:
            error = "the sink closed before this event was queued"
            self._on_dead_letter(WebhookDeadLetter(event, self.sink.redacted_url, error, 0, time.time()))
        self._staged.clear()
        if left:
            log.warning("%d staged events were never queued for the webhook; they went to dead letters", left)
        return CloseReport(report.delivered, report.dead_lettered + left, report.left_at_close + left)


def check_webhook_options(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> str | None:
    """Return the webhook secret when ``--webhook-url`` is set and usable, None when it is not set.

    Reads the secret from ``AGENTLOAD_WEBHOOK_SECRET``. Raises :class:`WebhookConfigError` with
    the fix when the URL, the secret or an option is unusable.
    """
    url = getattr(args, "webhook_url", None)
    if not url:
        return None
    check_webhook_url(url, allow_insecure=args.webhook_insecure)
    if not (math.isfinite(args.webhook_timeout) and args.webhook_timeout > 0):
        raise WebhookConfigError(f"--webhook-timeout {args.webhook_timeout:g} is invalid; use a positive number of seconds")
    if args.webhook_max_attempts < 1:
        raise WebhookConfigError(f"--webhook-max-attempts {args.webhook_max_attempts} is invalid; use at least 1")

    environ = os.environ if environ is None else environ
    secret = environ.get(SECRET_ENV, "")
    if not secret:
        raise WebhookConfigError(
            f"--webhook-url is set but ${SECRET_ENV} is missing or empty; "
            f"set it to a random secret of at least {MIN_SECRET_CHARS} characters that the receiver also knows"
        )
    if len(secret) < MIN_SECRET_CHARS:
        raise WebhookConfigError(
            f"${SECRET_ENV} has {len(secret)} characters; use a random secret of at least {MIN_SECRET_CHARS}, "
            "e.g. from `python -c 'import secrets; print(secrets.token_hex(32))'`"
        )
    return secret


async def attach_webhook(
    runtime, args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> RuntimeWebhook | None:
    """Start a webhook sink fed by ``runtime`` when ``--webhook-url`` is set; return None otherwise.

    Raises :class:`WebhookConfigError` as :func:`check_webhook_options` does.
    """
    secret = check_webhook_options(args, environ)
    if secret is None:
        return None
    url = args.webhook_url

    metrics = getattr(runtime, "metrics", None)
    counters = _prometheus_counters(metrics.registry) if metrics is not None else WebhookCounters()
    on_dead_letter = _dead_letter_writer(Path(args.webhook_dead_letters) if args.webhook_dead_letters else None)
    sink = WebhookSink(
        url,
        secret,
        on_dead_letter=on_dead_letter,
        max_attempts=args.webhook_max_attempts,
        timeout_s=args.webhook_timeout,
        counters=counters,
    )
    await sink.start()
    webhook = RuntimeWebhook(sink, runtime.engine.config.runtime.event_source, on_dead_letter)
    runtime.on_transition.append(webhook.on_transition)
    return webhook


def _dead_letter_writer(path: Path | None) -> Callable[[WebhookDeadLetter], None]:
    """Return a callback that appends dead letters to ``path`` as JSON Lines, or logs them without one."""

    def write(dead_letter: WebhookDeadLetter) -> None:
        line = dumps(dead_letter.to_record())
        if path is None:
            log.warning("webhook dead letter: %s", line)
            return
        with path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")

    return write


def _prometheus_counters(registry) -> WebhookCounters:
    from prometheus_client import Counter as PrometheusCounter

    return WebhookCounters(
        delivered=PrometheusCounter(
            "agentload_webhook_delivered", "Recovery-break events the webhook receiver accepted", registry=registry
        ),
        retries=PrometheusCounter(
            "agentload_webhook_retries", "Webhook requests retried after a failure or timeout", registry=registry
        ),
        dead_lettered=PrometheusCounter(
            "agentload_webhook_dead_letters", "Recovery-break events the webhook sink gave up on", registry=registry
        ),
    )
