"""Metrics that agentload exports: the one list that rule, dashboard and metrics tests check against.

Keys are metric names as they appear on /metrics: counters with their `_total` suffix,
histograms by their base name, to which Prometheus adds `_bucket`, `_sum` and `_count`.
"""

from __future__ import annotations

EXPORTED_METRICS: dict[str, str] = {
    "agentload_events_total": "counter",
    "agentload_event_lag_seconds": "histogram",
    "agentload_processing_seconds": "histogram",
    "agentload_decision_latency_seconds": "histogram",
    "agentload_agents_tracked": "gauge",
    "agentload_agents": "gauge",
    "agentload_team_load": "gauge",
    "agentload_break_transitions_total": "counter",
    "agentload_breaks_open": "gauge",
    "agentload_break_deferred_max_age_seconds": "gauge",
    "agentload_dead_letters_total": "counter",
    "agentload_tick_duration_seconds": "histogram",
    "agentload_consumer_lag_messages": "gauge",
    "agentload_ready": "gauge",
    "agentload_last_event_timestamp_seconds": "gauge",
    "agentload_webhook_delivered_total": "counter",
    "agentload_webhook_retries_total": "counter",
    "agentload_webhook_dead_letters_total": "counter",
}

# Label names of each metric, without the `job` and `instance` labels that Prometheus adds
# when it scrapes, and without a histogram's `le`.
EXPORTED_LABELS: dict[str, tuple[str, ...]] = {
    "agentload_events_total": ("topic", "type", "outcome"),
    "agentload_event_lag_seconds": ("topic",),
    "agentload_processing_seconds": ("topic",),
    "agentload_decision_latency_seconds": (),
    "agentload_agents_tracked": (),
    "agentload_agents": ("team", "level"),
    "agentload_team_load": ("team", "quantile"),
    "agentload_break_transitions_total": ("team", "type"),
    "agentload_breaks_open": ("team", "state"),
    "agentload_break_deferred_max_age_seconds": ("team",),
    "agentload_dead_letters_total": ("topic", "reason"),
    "agentload_tick_duration_seconds": (),
    "agentload_consumer_lag_messages": ("topic", "partition"),
    "agentload_ready": (),
    "agentload_last_event_timestamp_seconds": (),
    "agentload_webhook_delivered_total": (),
    "agentload_webhook_retries_total": (),
    "agentload_webhook_dead_letters_total": (),
}

HISTOGRAM_SERIES_SUFFIXES = ("_bucket", "_sum", "_count")


def exported_metric_name(series_name: str) -> str | None:
    """Map a series name to the exported metric it belongs to, or None if agentload exports none.

    A histogram's `_bucket`, `_sum` and `_count` series map to the histogram's base name, so
    `agentload_tick_duration_seconds_count` gives `agentload_tick_duration_seconds`.
    """
    if series_name in EXPORTED_METRICS:
        return series_name

    for suffix in HISTOGRAM_SERIES_SUFFIXES:
        base_name = series_name.removesuffix(suffix)
        if base_name != series_name and EXPORTED_METRICS.get(base_name) == "histogram":
            return base_name
    return None
