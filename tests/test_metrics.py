"""Prometheus metrics: what a running process exports, and how many series it makes."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streams.config import load_config
from streams.engine import Engine
from streams.events import format_ts, validate_any
from streams.metrics import Metrics
from tests.conftest import REPO_ROOT
from tests.metric_names import EXPORTED_METRICS

# Exported only by Faust workers, or only with a WFM webhook, neither of which this run has.
WORKER_ONLY = {"agentload_consumer_lag_messages"}
WEBHOOK_ONLY = {"agentload_webhook_delivered_total", "agentload_webhook_retries_total", "agentload_webhook_dead_letters_total"}
START = 1_772_438_400.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def scrape(url: str, timeout_s: float = 30.0) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2.0) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def exported_types(text: str) -> dict[str, str]:
    """Return metric name -> type, counters with their _total suffix as Prometheus stores them."""
    types = {}
    for family in text_string_to_metric_families(text):
        name = family.name + "_total" if family.type == "counter" else family.name
        types[name] = family.type
    return types


def test_running_process_exports_every_metric_of_rules_and_dashboard():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "run", "--speed", "600", "--duration", "20", "--seed", "7",
         "--start", "2026-03-02T08:00:00Z", "--http-port", str(port), "--summary-every", "0"],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        # Give the floor a few seconds (tens of simulated minutes) so breaks and levels exist.
        scrape(f"http://127.0.0.1:{port}/healthz")
        time.sleep(4.0)
        text = scrape(f"http://127.0.0.1:{port}/metrics")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2.0) as response:
            ready_status = response.status
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)

    assert process.returncode == 0, stderr.decode()
    assert ready_status == 200
    exported = exported_types(text)
    for name, kind in EXPORTED_METRICS.items():
        if name in WORKER_ONLY or name in WEBHOOK_ONLY:
            continue
        assert exported.get(name) == kind, f"{name}: expected a {kind}, /metrics has {exported.get(name)}"
    assert 'agentload_ready 1.0' in text


def floor_events(agents: int) -> list[dict]:
    """Return one short call per agent, agents spread over four teams."""
    events = []
    for index in range(agents):
        agent_id = f"agent-{index:05d}"
        team_id = f"team-{index % 4}"
        at = START + index * 0.01
        for offset, event_type in ((0.0, "call_started"), (200.0, "call_ended")):
            events.append(
                {
                    "event_id": f"{agent_id}-{event_type}",
                    "type": event_type,
                    "agent_id": agent_id,
                    "team_id": team_id,
                    "call_id": f"{agent_id}-c1",
                    "ts": format_ts(at + offset),
                }
            )
    return events


def series_count(agents: int, per_agent: bool = False) -> int:
    registry = CollectorRegistry()
    metrics = Metrics(registry, per_agent=per_agent)
    engine = Engine(load_config())
    metrics.watch(engine)
    for document in floor_events(agents):
        engine.submit(validate_any(document))
    engine.flush()
    assert len(engine.agents) == agents
    return sum(len(family.samples) for family in text_string_to_metric_families(generate_latest(registry).decode()))


def test_series_count_does_not_grow_with_agents():
    assert series_count(5_000) == series_count(100)


def test_per_agent_option_adds_one_series_per_logged_in_agent():
    assert series_count(300, per_agent=True) - series_count(300) == 300


def test_per_agent_series_disappears_when_agent_logs_off():
    registry = CollectorRegistry()
    metrics = Metrics(registry, per_agent=True)
    engine = Engine(load_config())
    metrics.watch(engine)
    for document in floor_events(3):
        engine.submit(validate_any(document))
    engine.submit(
        validate_any(
            {"event_id": "off", "type": "agent_state", "agent_id": "agent-00001", "state": "offline", "ts": format_ts(START + 300)}
        )
    )
    engine.flush()

    text = generate_latest(registry).decode()

    assert 'agent="agent-00000"' in text
    assert 'agent="agent-00001"' not in text
