"""Prometheus metrics of agentload, shared by both runtimes.

The hot path only bumps plain integers in the engine (``Engine.counts``,
``Engine.transition_counts``). This module turns them into metric families when Prometheus
scrapes, together with gauges read off the engine's state. Histograms are observed by the
runtimes once per batch or per sampled message, never per event, so that metrics cost little
throughput. No metric has a per-agent label unless ``per_agent`` is set, and then an agent's
series disappear when the agent logs off.

Usage::

    metrics = Metrics()
    metrics.watch(engine)
    metrics.processing_seconds.labels(topic="call-events").observe(0.0004)
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import REGISTRY, CollectorRegistry, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from alerts.policy import DEFERRED, OPEN_STATUSES
from streams.engine import IGNORED, Engine
from streams.events import topic_of_type
from streams.state import LEVELS

# Decision latency has a 250 ms target, so 0.25 is a bucket edge and the alert is exact.
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LAG_BUCKETS_S = (0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
PROCESSING_BUCKETS_S = (1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05)

# Engine outcomes that are metric outcomes as they are; every dead-letter reason counts as invalid.
_OUTCOMES = {"processed": "processed", IGNORED: "processed", "duplicate": "duplicate", "late": "late"}
_TEAM_QUANTILES = (("0.5", 0.5), ("0.9", 0.9), ("1", 1.0))


class Metrics:
    """The metrics of one agentload process, registered in ``registry`` (the default one)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY, per_agent: bool = False):
        self.registry = registry
        self.per_agent = per_agent
        self.event_lag_seconds = Histogram(
            "agentload_event_lag_seconds",
            "Wall-clock receive time minus event time of input events",
            ["topic"],
            buckets=LAG_BUCKETS_S,
            registry=registry,
        )
        self.processing_seconds = Histogram(
            "agentload_processing_seconds",
            "Time to decode and apply one input message, sampled",
            ["topic"],
            buckets=PROCESSING_BUCKETS_S,
            registry=registry,
        )
        self.decision_latency_seconds = Histogram(
            "agentload_decision_latency_seconds",
            "Time from receiving the event that caused a break transition to emitting the transition",
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.tick_duration_seconds = Histogram(
            "agentload_tick_duration_seconds",
            "Duration of the periodic tick that advances time, fires timers and takes snapshots",
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.consumer_lag_messages = Gauge(
            "agentload_consumer_lag_messages",
            "Kafka consumer lag of the worker, per input topic and partition",
            ["topic", "partition"],
            registry=registry,
        )
        self.ready = Gauge("agentload_ready", "1 when the process is consuming input", registry=registry)
        self.last_event_timestamp_seconds = Gauge(
            "agentload_last_event_timestamp_seconds",
            "Unix time at which the last input event was received",
            registry=registry,
        )
        self._collector: _EngineCollector | None = None

    def watch(self, engine: Engine) -> None:
        """Export the counters and state of ``engine`` at every scrape."""
        if self._collector is not None:
            self.registry.unregister(self._collector)
        self._collector = _EngineCollector(engine, self.per_agent)
        self.registry.register(self._collector)

    def received(self, count: int = 1) -> None:
        """Note that input arrived now."""
        if count:
            self.last_event_timestamp_seconds.set(time.time())


class _EngineCollector(Collector):
    def __init__(self, engine: Engine, per_agent: bool):
        self.engine = engine
        self.per_agent = per_agent

    def collect(self) -> Iterable:
        engine = self.engine
        events = CounterMetricFamily(
            "agentload_events", "Input events handled, by topic, type and outcome", labels=["topic", "type", "outcome"]
        )
        dead_letters = CounterMetricFamily(
            "agentload_dead_letters", "Messages sent to dead-letters, by input topic and reason", labels=["topic", "reason"]
        )
        by_outcome: dict[tuple[str, str, str], int] = {}
        by_reason: dict[tuple[str, str], int] = {}
        for (event_type, outcome), count in list(engine.counts.items()):
            topic = topic_of_type(event_type)
            metric_outcome = _OUTCOMES.get(outcome, "invalid")
            key = (topic, event_type, metric_outcome)
            by_outcome[key] = by_outcome.get(key, 0) + count
            if metric_outcome == "invalid":
                reason_key = (topic, outcome)
                by_reason[reason_key] = by_reason.get(reason_key, 0) + count
        for labels, count in sorted(by_outcome.items()):
            events.add_metric(list(labels), count)
        for labels, count in sorted(by_reason.items()):
            dead_letters.add_metric(list(labels), count)
        yield events
        yield dead_letters

        transitions = CounterMetricFamily(
            "agentload_break_transitions", "Break lifecycle transitions emitted, by team and type", labels=["team", "type"]
        )
        for (team_id, transition_type), count in sorted(engine.transition_counts.items()):
            transitions.add_metric([team_id, transition_type], count)
        yield transitions

        yield from self._floor(engine)

    def _floor(self, engine: Engine) -> Iterable:
        tracked = GaugeMetricFamily("agentload_agents_tracked", "Agents with state in this process")
        tracked.add_metric([], len(engine.agents))
        yield tracked

        levels: dict[str, list[int]] = {}
        loads: dict[str, list[float]] = {}
        per_agent = GaugeMetricFamily("agentload_agent_load", "Load of each logged-in agent", labels=["team", "agent"]) if self.per_agent else None
        for agent in list(engine.agents.values()):
            if agent.state == "offline":
                continue
            levels.setdefault(agent.team_id, [0, 0, 0])[agent.level] += 1
            load = agent.load
            loads.setdefault(agent.team_id, []).append(load)
            if per_agent is not None:
                per_agent.add_metric([agent.team_id, agent.agent_id], load)

        agents = GaugeMetricFamily("agentload_agents", "Logged-in agents by team and level", labels=["team", "level"])
        team_load = GaugeMetricFamily(
            "agentload_team_load", "Load of a team's logged-in agents at a quantile (1 is the maximum)", labels=["team", "quantile"]
        )
        for team_id in sorted(levels):
            for level, count in zip(LEVELS, levels[team_id]):
                agents.add_metric([team_id, level], count)
            values = sorted(loads[team_id])
            for label, q in _TEAM_QUANTILES:
                team_load.add_metric([team_id, label], values[min(len(values) - 1, int(q * len(values)))])
        yield agents
        yield team_load
        if per_agent is not None:
            yield per_agent

        open_breaks: dict[tuple[str, str], int] = {}
        oldest_deferred: dict[str, float] = {}
        for team_id in engine.teams:
            oldest_deferred[team_id] = 0.0
            for status in OPEN_STATUSES:
                open_breaks[(team_id, status)] = 0
        now = engine.applied_until
        for brk in list(engine.policy.breaks.values()):
            open_breaks[(brk.team_id, brk.status)] = open_breaks.get((brk.team_id, brk.status), 0) + 1
            if brk.status == DEFERRED:
                age = max(0.0, now - brk.created_at)
                oldest_deferred[brk.team_id] = max(oldest_deferred.get(brk.team_id, 0.0), age)
        breaks = GaugeMetricFamily("agentload_breaks_open", "Breaks not yet ended, by team and state", labels=["team", "state"])
        for (team_id, status), count in sorted(open_breaks.items()):
            breaks.add_metric([team_id, status], count)
        yield breaks
        deferred_age = GaugeMetricFamily(
            "agentload_break_deferred_max_age_seconds",
            "Event-time age of the oldest deferred break of a team (0 if none)",
            labels=["team"],
        )
        for team_id, age in sorted(oldest_deferred.items()):
            deferred_age.add_metric([team_id], age)
        yield deferred_age
