"""The webhook sink against a real HTTP receiver on 127.0.0.1: signatures, retries, order per agent,
dead letters, back-pressure and shutdown; and ``agentload run --webhook-url`` end to end."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections import Counter as Tally
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
from aiohttp import web

from alerts.webhook import (
    CLOUDEVENTS_CONTENT_TYPE,
    IDEMPOTENCY_HEADER,
    SECRET_ENV,
    SIGNATURE_HEADER,
    SignatureError,
    WebhookClosedError,
    WebhookConfigError,
    WebhookCounters,
    WebhookSink,
    add_webhook_arguments,
    backoff_delay_s,
    backoff_schedule_s,
    check_webhook_options,
    check_webhook_url,
    redact_url,
    sign,
    verify_signature,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
SECRET = "s3cret-" + "x" * 40
TYPES = ("suggested", "accepted", "started", "completed", "cancelled")


def cloudevent(agent: str, number: int) -> dict:
    """Return a recovery-breaks CloudEvent for ``agent``; ``number`` orders the agent's events."""
    return {
        "specversion": "1.0",
        "id": f"brk-{agent}-{number}",
        "source": "urn:agentload:test",
        "type": f"io.agentload.break.{TYPES[number % len(TYPES)]}",
        "subject": agent,
        "time": f"2026-03-02T08:{number:02d}:00Z",
        "datacontenttype": "application/json",
        "dataschema": "urn:agentload:schema:recovery-breaks:1",
        "data": {"break_id": f"brk-{agent}", "agent_id": agent, "reason_code": "RECOVERY_BREAK"},
    }


def events_for(agents: int, per_agent: int) -> list[dict]:
    """Return the events of several agents interleaved, as a runtime would emit them."""
    return [cloudevent(f"agent-{a:02d}", n) for n in range(per_agent) for a in range(agents)]


class Counter:
    def __init__(self) -> None:
        self.value = 0

    def inc(self, amount: float = 1) -> None:
        self.value += amount


class Receiver:
    """A webhook receiver that de-duplicates by Idempotency-Key and checks every signature.

    ``behaviour(request_number, key)`` returns "ok", "fail" (HTTP 500, nothing kept), "slow"
    (keeps the event, then responds only after ``slow_s``, past the client's timeout), "reject"
    (HTTP 400) or "hold" (waits for ``gate`` before it keeps the event and responds 204).
    """

    def __init__(self, behaviour: Callable[[int, str], str], slow_s: float = 0.3):
        self.behaviour = behaviour
        self.slow_s = slow_s
        self.requests = 0
        self.bad_signatures = 0
        self.bad_headers = 0
        self.delivered: dict[str, dict] = {}
        self.order: dict[str, list[str]] = defaultdict(list)
        self.duplicates = 0
        self.gate = asyncio.Event()
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self, path: str = "/hook") -> str:
        app = web.Application()
        app.router.add_post(path, self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}{path}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.read()
        try:
            verify_signature(SECRET, request.headers.get(SIGNATURE_HEADER), body, tolerance_s=60)
        except SignatureError:
            self.bad_signatures += 1
            return web.Response(status=401)
        event = json.loads(body)
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key != event["id"] or request.headers.get("Content-Type") != CLOUDEVENTS_CONTENT_TYPE:
            self.bad_headers += 1

        action = self.behaviour(self.requests, key)
        if action == "fail":
            return web.Response(status=500)
        if action == "reject":
            return web.Response(status=400)
        if action == "hold":
            await self.gate.wait()
        self.keep(key, event)
        if action == "slow":
            await asyncio.sleep(self.slow_s)
        return web.Response(status=204)

    def keep(self, key: str, event: dict) -> None:
        if key in self.delivered:
            self.duplicates += 1
            return
        self.delivered[key] = event
        self.order[event["subject"]].append(key)


def sent_order(events: list[dict]) -> dict[str, list[str]]:
    order: dict[str, list[str]] = defaultdict(list)
    for event in events:
        order[event["subject"]].append(event["id"])
    return order


@pytest.fixture
async def receiver_factory():
    receivers: list[Receiver] = []

    async def make(behaviour: Callable[[int, str], str], slow_s: float = 0.3) -> Receiver:
        receiver = Receiver(behaviour, slow_s)
        await receiver.start()
        receivers.append(receiver)
        return receiver

    yield make
    for receiver in receivers:
        receiver.gate.set()
        await receiver.stop()


def fast_sink(url: str, dead: list, **options) -> WebhookSink:
    settings = dict(max_attempts=20, base_delay_s=0.002, max_delay_s=0.02, timeout_s=0.1, concurrency=3)
    settings.update(options)
    return WebhookSink(url, SECRET, on_dead_letter=dead.append, **settings)


# Signatures -------------------------------------------------------------------------------------


def test_signature_round_trip_passes():
    body = b'{"id":"brk-1"}'
    header = sign(SECRET, body, 1_772_438_400)

    assert header.startswith("t=1772438400,v1=")
    verify_signature(SECRET, header, body, tolerance_s=300, now=1_772_438_400 + 299)


def test_signature_is_hmac_sha256_of_timestamp_dot_body():
    import hashlib
    import hmac

    body = b'{"id":"brk-1"}'
    expected = hmac.new(SECRET.encode(), b"1772438400." + body, hashlib.sha256).hexdigest()

    assert sign(SECRET, body, 1_772_438_400) == f"t=1772438400,v1={expected}"


def test_signature_tampered_body_rejected():
    header = sign(SECRET, b'{"load":71.2}', 1_772_438_400)

    with pytest.raises(SignatureError, match="does not match the body"):
        verify_signature(SECRET, header, b'{"load":11.2}', tolerance_s=300, now=1_772_438_400)


def test_signature_wrong_secret_rejected():
    header = sign("another-secret-" + "y" * 40, b"{}", 1_772_438_400)

    with pytest.raises(SignatureError, match="secret differs"):
        verify_signature(SECRET, header, b"{}", tolerance_s=300, now=1_772_438_400)


def test_signature_stale_timestamp_rejected():
    header = sign(SECRET, b"{}", 1_772_438_400)

    with pytest.raises(SignatureError, match=r"\+301 s from now, outside the tolerance of 300 s"):
        verify_signature(SECRET, header, b"{}", tolerance_s=300, now=1_772_438_400 + 301)


def test_signature_future_timestamp_rejected():
    header = sign(SECRET, b"{}", 1_772_438_400)

    with pytest.raises(SignatureError, match=r"-400 s from now"):
        verify_signature(SECRET, header, b"{}", tolerance_s=300, now=1_772_438_400 - 400)


def test_signature_timestamp_swapped_into_header_rejected():
    # A replayed request with a fresh t= but the old digest must fail: t is part of what is signed.
    old = sign(SECRET, b"{}", 1_772_438_400)
    replay = old.replace("t=1772438400", "t=1772439000")

    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(SECRET, replay, b"{}", tolerance_s=300, now=1_772_439_000)


@pytest.mark.parametrize(
    "header, message",
    [
        (None, "missing X-Agentload-Signature"),
        ("", "missing X-Agentload-Signature"),
        ("v1=abcd", "needs both t= and v1="),
        ("t=1772438400", "needs both t= and v1="),
        ("t=soon,v1=abcd", "timestamp 'soon' is not whole Unix seconds"),
        ("t=1772438400,v1abcd", "part 'v1abcd' is not name=value"),
    ],
)
def test_signature_malformed_header_rejected(header, message):
    with pytest.raises(SignatureError, match=message):
        verify_signature(SECRET, header, b"{}", tolerance_s=300, now=1_772_438_400)


def test_signature_any_of_several_v1_passes():
    good = sign(SECRET, b"{}", 1_772_438_400).partition(",v1=")[2]
    header = f"t=1772438400,v1={'0' * 64},v1={good}"

    verify_signature(SECRET, header, b"{}", tolerance_s=300, now=1_772_438_400)


# Backoff ----------------------------------------------------------------------------------------


def test_backoff_schedule_doubles_to_cap():
    schedule = backoff_schedule_s(7, base_delay_s=0.1, max_delay_s=1.0, rand=lambda: 0.5)

    assert schedule == [0.05, 0.1, 0.2, 0.4, 0.5, 0.5]


def test_backoff_full_jitter_spans_zero_to_cap():
    draws = iter([0.0, 0.999, 0.25])

    assert backoff_delay_s(1, 0.2, 5.0, rand=lambda: next(draws)) == 0.0
    assert backoff_delay_s(4, 0.2, 5.0, rand=lambda: next(draws)) == pytest.approx(0.999 * 1.6)
    assert backoff_delay_s(30, 0.2, 5.0, rand=lambda: next(draws)) == 1.25


def test_backoff_huge_retry_number_stays_capped():
    assert backoff_delay_s(10_000, 0.5, 30.0, rand=lambda: 0.5) == 15.0


def test_backoff_retry_zero_rejected():
    with pytest.raises(ValueError, match="retry 0 is invalid"):
        backoff_delay_s(0, 0.5, 30.0)


def test_backoff_schedule_has_one_wait_fewer_than_attempts():
    assert backoff_schedule_s(1, 0.5, 30.0) == []
    assert len(backoff_schedule_s(8, 0.5, 30.0)) == 7


# URLs and options -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://wfm.example/hook",
        "http://127.0.0.1:8080/hook",
        "http://127.8.9.10/hook",
        "http://localhost/hook",
        "http://[::1]:9/h",
    ],
)
def test_url_https_or_loopback_accepted(url):
    assert check_webhook_url(url) == url


def test_url_plain_http_to_remote_host_rejected():
    with pytest.raises(WebhookConfigError) as info:
        check_webhook_url("http://user:pw@wfm.example/hook?token=abc")

    message = str(info.value)
    assert "'http://wfm.example/hook' uses plain http to a host that is not loopback" in message
    assert "--webhook-insecure" in message
    assert "pw" not in message
    assert "abc" not in message


def test_url_plain_http_allowed_when_insecure():
    assert check_webhook_url("http://wfm.example/hook", allow_insecure=True) == "http://wfm.example/hook"


@pytest.mark.parametrize("url", ["ftp://wfm.example/hook", "wfm.example/hook", "https:///hook", "http://127.0.0.1:99999/"])
def test_url_unusable_rejected(url):
    with pytest.raises(WebhookConfigError, match="invalid"):
        check_webhook_url(url)


def test_redact_url_drops_credentials():
    assert redact_url("https://user:pw@wfm.example:8443/a/b?token=abc#frag") == "https://wfm.example:8443/a/b"
    assert redact_url("http://[::1]:9/h?k=v") == "http://[::1]:9/h"


def webhook_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_webhook_arguments(parser)
    return parser.parse_args(list(argv))


def test_options_without_url_need_no_secret():
    assert check_webhook_options(webhook_args(), environ={}) is None


def test_options_missing_secret_rejected():
    with pytest.raises(WebhookConfigError, match=r"--webhook-url is set but \$AGENTLOAD_WEBHOOK_SECRET is missing"):
        check_webhook_options(webhook_args("--webhook-url", "https://wfm.example/hook"), environ={})


def test_options_short_secret_rejected():
    args = webhook_args("--webhook-url", "https://wfm.example/hook")

    with pytest.raises(WebhookConfigError, match=r"\$AGENTLOAD_WEBHOOK_SECRET has 6 characters; use .* at least 32"):
        check_webhook_options(args, environ={SECRET_ENV: "abcdef"})


def test_options_bad_timeout_and_attempts_rejected():
    environ = {SECRET_ENV: SECRET}
    zero_timeout = webhook_args("--webhook-url", "https://h/x", "--webhook-timeout", "0")
    zero_attempts = webhook_args("--webhook-url", "https://h/x", "--webhook-max-attempts", "0")

    with pytest.raises(WebhookConfigError, match="--webhook-timeout 0 is invalid"):
        check_webhook_options(zero_timeout, environ)
    with pytest.raises(WebhookConfigError, match="--webhook-max-attempts 0 is invalid"):
        check_webhook_options(zero_attempts, environ)


def test_options_usable_return_secret():
    args = webhook_args("--webhook-url", "http://127.0.0.1:1/hook")

    assert check_webhook_options(args, environ={SECRET_ENV: SECRET}) == SECRET


def test_sink_bad_settings_rejected():
    with pytest.raises(WebhookConfigError, match="max_attempts 0 is invalid; .*timeout_s 0 is invalid"):
        WebhookSink("https://h/x", SECRET, on_dead_letter=print, max_attempts=0, timeout_s=0)


# Delivery ---------------------------------------------------------------------------------------


async def test_delivery_survives_failures_and_timeouts(receiver_factory):
    # 500s first, then responses that come after the client gave up, then a healthy receiver.
    def behaviour(number: int, key: str) -> str:
        if number <= 8:
            return "fail"
        if number <= 12:
            return "slow"
        return "ok"

    # The timeout leaves a healthy response on a busy machine ample time, so the counts are exact.
    receiver = await receiver_factory(behaviour, slow_s=0.6)
    dead: list = []
    counters = WebhookCounters(delivered=Counter(), retries=Counter(), dead_lettered=Counter())
    sink = fast_sink(receiver.url, dead, counters=counters, timeout_s=0.25)
    await sink.start()
    events = events_for(agents=5, per_agent=6)

    for event in events:
        await sink.send(event)
    report = await sink.close(drain_timeout_s=15)

    assert dead == []
    assert set(receiver.delivered) == {event["id"] for event in events}
    assert dict(receiver.order) == dict(sent_order(events))
    assert receiver.bad_signatures == 0
    assert receiver.bad_headers == 0
    # Each slow response kept its event and timed out at the client, so the retry was a duplicate.
    assert receiver.duplicates == 4
    assert receiver.requests == len(events) + 8 + 4
    assert (report.delivered, report.dead_lettered, report.left_at_close) == (30, 0, 0)
    assert (counters.delivered.value, counters.retries.value, counters.dead_lettered.value) == (30, 12, 0)
    assert receiver.delivered["brk-agent-03-2"] == events[13]


async def test_receiver_never_recovers_all_dead_lettered(receiver_factory):
    receiver = await receiver_factory(lambda number, key: "fail")
    dead: list = []
    url = receiver.url.replace("http://", "http://user:pw@") + "?token=abc"
    sink = fast_sink(url, dead, max_attempts=3)
    await sink.start()
    events = events_for(agents=3, per_agent=4)

    for event in events:
        await sink.send(event)
    report = await sink.close(drain_timeout_s=15)

    assert receiver.delivered == {}
    assert [letter.event for letter in dead if letter.event["subject"] == "agent-01"] == [
        event for event in events if event["subject"] == "agent-01"
    ]
    assert {letter.event["id"] for letter in dead} == {event["id"] for event in events}
    assert len(dead) == len(events)
    assert {letter.attempts for letter in dead} == {3}
    assert {letter.error for letter in dead} == {"HTTP 500"}
    assert {letter.url for letter in dead} == {receiver.url}
    assert receiver.requests == 3 * len(events)
    assert (report.delivered, report.dead_lettered, report.left_at_close) == (0, 12, 0)

    record = dead[0].to_record()
    assert record["url"] == receiver.url
    assert "abc" not in json.dumps(record)
    assert "pw" not in record["url"]
    assert record["event"] == dead[0].event


async def test_rejected_event_dead_lettered_agent_continues(receiver_factory):
    receiver = await receiver_factory(lambda number, key: "reject" if key == "brk-agent-00-1" else "ok")
    dead: list = []
    sink = fast_sink(receiver.url, dead)
    await sink.start()
    events = events_for(agents=2, per_agent=4)

    for event in events:
        await sink.send(event)
    await sink.close(drain_timeout_s=15)

    assert [(letter.event["id"], letter.error, letter.attempts) for letter in dead] == [("brk-agent-00-1", "HTTP 400", 1)]
    assert receiver.order["agent-00"] == ["brk-agent-00-0", "brk-agent-00-2", "brk-agent-00-3"]
    assert receiver.order["agent-01"] == ["brk-agent-01-0", "brk-agent-01-1", "brk-agent-01-2", "brk-agent-01-3"]
    assert set(receiver.delivered) | {letter.event["id"] for letter in dead} == {event["id"] for event in events}


async def test_full_queue_makes_send_wait(receiver_factory):
    receiver = await receiver_factory(lambda number, key: "hold")
    dead: list = []
    sink = fast_sink(receiver.url, dead, max_queued=2, timeout_s=5)
    await sink.start()
    events = events_for(agents=1, per_agent=4)

    await sink.send(events[0])
    await sink.send(events[1])
    third = asyncio.create_task(sink.send(events[2]))
    await asyncio.sleep(0.05)

    assert not third.done()
    assert sink.queued == 2
    assert sink.try_send(events[3]) is False

    receiver.gate.set()
    await third
    await sink.send(events[3])
    report = await sink.close(drain_timeout_s=15)

    assert receiver.order["agent-00"] == [event["id"] for event in events]
    assert (report.delivered, report.dead_lettered) == (4, 0)


async def test_close_dead_letters_what_it_cannot_drain(receiver_factory):
    receiver = await receiver_factory(lambda number, key: "fail")
    dead: list = []
    sink = fast_sink(receiver.url, dead, max_attempts=1_000)
    await sink.start()
    events = events_for(agents=2, per_agent=3)

    for event in events:
        await sink.send(event)
    report = await sink.close(drain_timeout_s=0.1)

    assert (report.delivered, report.dead_lettered, report.left_at_close) == (0, 6, 6)
    assert {letter.event["id"] for letter in dead} == {event["id"] for event in events}
    assert all(letter.error.startswith("the sink closed after draining for 0.1 s") for letter in dead)
    # Only the head of each agent's queue was tried; the events behind it waited their turn.
    tried = [letter.event["id"] for letter in dead if letter.error.endswith("; last error: HTTP 500")]
    assert sorted(tried) == ["brk-agent-00-0", "brk-agent-01-0"]
    with pytest.raises(WebhookClosedError, match="is closed"):
        await sink.send(events[0])


async def test_unreachable_receiver_dead_letters_with_error(receiver_factory):
    receiver = await receiver_factory(lambda number, key: "ok")
    await receiver.stop()
    dead: list = []
    sink = fast_sink(receiver.url, dead, max_attempts=2)
    await sink.start()

    await sink.send(cloudevent("agent-00", 0))
    await sink.close(drain_timeout_s=15)

    assert len(dead) == 1
    assert dead[0].attempts == 2
    assert dead[0].error.startswith("ClientConnectorError: ")


async def test_event_without_subject_rejected(receiver_factory):
    receiver = await receiver_factory(lambda number, key: "ok")
    sink = fast_sink(receiver.url, [])
    await sink.start()
    event = cloudevent("agent-00", 0)
    del event["subject"]

    with pytest.raises(ValueError, match="CloudEvent 'brk-agent-00-0' has no subject"):
        await sink.send(event)
    await sink.close()


# agentload run ----------------------------------------------------------------------------------


async def test_run_posts_every_transition_signed(receiver_factory, tmp_path):
    # The receiver fails now and then, so the run's own retries are exercised too.
    receiver = await receiver_factory(lambda number, key: "fail" if number % 7 == 0 else "ok")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), **{SECRET_ENV: SECRET})
    dead_file = tmp_path / "dead.jsonl"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streams.cli", "run", "--speed", "600", "--seed", "7", "--start", "2026-03-02T08:00:00Z",
        "--duration", "3", "--no-http", "--json", "--webhook-url", receiver.url,
        "--webhook-dead-letters", str(dead_file),
        cwd=REPO_ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)

    assert process.returncode == 0, stderr.decode()
    printed = [json.loads(line) for line in stdout.decode().splitlines()]
    assert printed, "the run emitted no break transitions"
    assert receiver.delivered == {event["id"]: event for event in printed}
    assert dict(receiver.order) == dict(sent_order(printed))
    assert receiver.bad_signatures == 0
    assert receiver.bad_headers == 0
    assert not dead_file.exists()
    schema = json.loads((REPO_ROOT / "streams" / "schemas" / "recovery-breaks.v1.json").read_text())
    for event in receiver.delivered.values():
        jsonschema.validate(event, schema)
    assert Tally(event["type"] for event in printed)["io.agentload.break.suggested"] >= 1


async def test_run_without_secret_exits_with_fix():
    env = {key: value for key, value in os.environ.items() if key != SECRET_ENV}
    env["PYTHONPATH"] = str(REPO_ROOT)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streams.cli", "run", "--duration", "1", "--no-http",
        "--webhook-url", "https://wfm.example/hook",
        cwd=REPO_ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)

    assert process.returncode == 2
    assert stdout == b""
    assert stderr.decode().strip() == (
        "agentload run: --webhook-url is set but $AGENTLOAD_WEBHOOK_SECRET is missing or empty; "
        "set it to a random secret of at least 32 characters that the receiver also knows"
    )
