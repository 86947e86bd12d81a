"""Check the Prometheus config, rules and Grafana dashboard with promtool and against the exported metrics."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.metric_names import EXPORTED_LABELS, EXPORTED_METRICS, exported_metric_name

PROMETHEUS_DIR = REPO_ROOT / "deploy" / "prometheus"
CONFIG_FILE = PROMETHEUS_DIR / "prometheus.yml"
RECORDING_RULES_FILE = PROMETHEUS_DIR / "rules" / "recording.yml"
ALERT_RULES_FILE = PROMETHEUS_DIR / "rules" / "alerts.yml"
RULE_TEST_FILES = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
DASHBOARD_FILE = REPO_ROOT / "deploy" / "grafana" / "dashboards" / "agentload.json"

EXPECTED_ALERTS = {
    "AgentloadNoEvents",
    "AgentloadConsumerLagGrowing",
    "AgentloadDeadLettersRising",
    "AgentloadDecisionLatencyHigh",
    "AgentloadWorkerDown",
    "AgentloadBreaksStuckDeferred",
}
SCRAPE_JOBS = {"agentload-worker", "agentload-embedded"}

# Labels Prometheus itself puts on every scraped series, and a histogram bucket's bound.
TARGET_LABELS = {"job", "instance"}
BUCKET_LABEL = "le"

# A PromQL identifier: a metric name or a recorded series name, which may contain colons.
IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
# An agentload metric followed by a label selector, e.g. agentload_agents{team=~"$team"}.
SELECTOR = re.compile(r"\b(agentload_[A-Za-z0-9_]*)\s*\{([^}]*)\}")
# One label matcher with its quoted value, so that text inside the value is never read as a label.
LABEL_MATCHER = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"')


def find_promtool() -> str | None:
    """Return the promtool to run: $PROMTOOL if set, else the one on PATH, else None."""
    return os.environ.get("PROMTOOL") or shutil.which("promtool")


@pytest.fixture(scope="module")
def promtool() -> str:
    path = find_promtool()
    if path is not None:
        return path

    message = "promtool is not installed; run deploy/prometheus/ensure-promtool to install it"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set, so these checks may not be skipped)")
    pytest.skip(message)


def run_promtool(promtool: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def load_yaml(path: Path) -> dict:
    with path.open(encoding="utf-8") as file:
        return yaml.safe_load(file)


def load_dashboard() -> dict:
    with DASHBOARD_FILE.open(encoding="utf-8") as file:
        return json.load(file)


def rules_of(path: Path) -> list[dict]:
    return [rule for group in load_yaml(path)["groups"] for rule in group["rules"]]


def strings_in(value: object) -> Iterator[str]:
    """Yield every string inside nested dicts and lists, keys excluded."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def dashboard_panels() -> list[dict]:
    panels = []
    for panel in load_dashboard()["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def dashboard_queries() -> list[str]:
    """Return every PromQL expression of the dashboard's panels and template variables."""
    queries = [target["expr"] for panel in dashboard_panels() for target in panel.get("targets", [])]
    for variable in load_dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            queries.append(variable["query"]["query"])
    return queries


def recorded_names() -> set[str]:
    return {rule["record"] for rule in rules_of(RECORDING_RULES_FILE)}


def metric_name_problems(texts: list[str], where: str) -> list[str]:
    """List each agentload metric or recorded series in `texts` that nothing exports or records."""
    recorded = recorded_names()
    problems = []
    for text in texts:
        for name in IDENTIFIER.findall(text):
            if ":" in name:
                if "agentload" in name and name not in recorded:
                    problems.append(f"{where}: recorded series {name!r} is not in {RECORDING_RULES_FILE.name}")
            elif name.startswith("agentload_") and exported_metric_name(name) is None:
                problems.append(f"{where}: metric {name!r} is not in tests/metric_names.py")
    return problems


def label_problems(texts: list[str], where: str) -> list[str]:
    """List each label matcher on an agentload metric that names a label the metric lacks."""
    problems = []
    for text in texts:
        for series_name, matchers in SELECTOR.findall(text):
            metric = exported_metric_name(series_name)
            if metric is None:
                continue
            allowed = set(EXPORTED_LABELS[metric]) | TARGET_LABELS
            if series_name.endswith("_bucket"):
                allowed.add(BUCKET_LABEL)
            for label in LABEL_MATCHER.findall(matchers):
                if label not in allowed:
                    problems.append(f"{where}: {series_name} has no label {label!r} (has {sorted(allowed)})")
    return problems


def rule_file_texts() -> list[str]:
    return [text for path in (RECORDING_RULES_FILE, ALERT_RULES_FILE) for text in strings_in(load_yaml(path))]


def rule_test_texts() -> list[str]:
    return [text for path in RULE_TEST_FILES for text in strings_in(load_yaml(path))]


def test_prometheus_config_is_valid(promtool: str) -> None:
    result = run_promtool(promtool, "check", "config", CONFIG_FILE)

    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_files_are_valid(promtool: str) -> None:
    result = run_promtool(promtool, "check", "rules", RECORDING_RULES_FILE, ALERT_RULES_FILE)

    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass(promtool: str) -> None:
    assert RULE_TEST_FILES, f"no rule test files in {PROMETHEUS_DIR / 'tests'}"

    result = run_promtool(promtool, "test", "rules", *RULE_TEST_FILES)

    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_queries_parse_as_promql(promtool: str, tmp_path: Path) -> None:
    # promtool parses every recording rule's expression, so the dashboard's queries go into a
    # throwaway rule file with Grafana's variables replaced by values Prometheus would get.
    substitutions = {"$__rate_interval": "5m", "$job": ".*", "$team": ".*"}
    rules = []
    for index, query in enumerate(dashboard_queries()):
        if query.startswith("label_values("):
            continue
        for variable, value in substitutions.items():
            query = query.replace(variable, value)
        rules.append({"record": f"dashboard_query_{index}", "expr": query})
    rule_file = tmp_path / "dashboard_queries.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8")

    result = run_promtool(promtool, "check", "rules", rule_file)

    assert result.returncode == 0, result.stdout + result.stderr


def test_config_scrapes_both_jobs() -> None:
    config = load_yaml(CONFIG_FILE)

    assert {job["job_name"] for job in config["scrape_configs"]} == SCRAPE_JOBS


def test_config_loads_both_rule_files() -> None:
    config = load_yaml(CONFIG_FILE)

    assert config["rule_files"] == ["rules/recording.yml", "rules/alerts.yml"]


def test_config_targets_are_on_loopback() -> None:
    config = load_yaml(CONFIG_FILE)

    for job in config["scrape_configs"]:
        for static_config in job["static_configs"]:
            for target in static_config["targets"]:
                assert target.startswith("127.0.0.1:"), f"{job['job_name']} scrapes {target}"


def test_alert_rules_are_the_expected_set() -> None:
    names = [rule["alert"] for rule in rules_of(ALERT_RULES_FILE)]

    assert sorted(names) == sorted(EXPECTED_ALERTS)


@pytest.mark.parametrize("alert", sorted(EXPECTED_ALERTS))
def test_alert_has_for_severity_and_annotations(alert: str) -> None:
    rule = next(rule for rule in rules_of(ALERT_RULES_FILE) if rule.get("alert") == alert)

    assert re.fullmatch(r"\d+[smh]", rule.get("for", "")), f"{alert} has no `for` duration"
    assert rule["labels"]["severity"] in {"critical", "warning"}
    assert rule["annotations"]["summary"].strip()
    assert rule["annotations"]["description"].strip()


@pytest.mark.parametrize("alert", sorted(EXPECTED_ALERTS))
def test_alert_has_firing_and_silent_unit_tests(alert: str) -> None:
    firing = 0
    silent = 0
    for path in RULE_TEST_FILES:
        for test in load_yaml(path)["tests"]:
            for case in test.get("alert_rule_test", []):
                if case["alertname"] != alert:
                    continue
                if case.get("exp_alerts"):
                    firing += 1
                else:
                    silent += 1

    assert firing >= 1, f"no unit test expects {alert} to fire"
    assert silent >= 1, f"no unit test expects {alert} to stay silent"


def test_alert_tests_load_the_alert_rules() -> None:
    for path in RULE_TEST_FILES:
        document = load_yaml(path)
        rule_files = {(path.parent / name).resolve() for name in document["rule_files"]}
        if any(test.get("alert_rule_test") for test in document["tests"]):
            assert ALERT_RULES_FILE.resolve() in rule_files, f"{path.name} tests alerts without loading them"


def test_recording_rules_are_all_unit_tested() -> None:
    tested = set()
    for path in RULE_TEST_FILES:
        for test in load_yaml(path)["tests"]:
            for case in test.get("promql_expr_test", []):
                tested.update(IDENTIFIER.findall(case["expr"]))

    assert recorded_names() <= tested, f"untested: {sorted(recorded_names() - tested)}"


def test_rules_use_only_exported_metrics() -> None:
    assert metric_name_problems(rule_file_texts(), "rules") == []


def test_rule_tests_use_only_exported_metrics() -> None:
    assert metric_name_problems(rule_test_texts(), "rule tests") == []


def test_dashboard_uses_only_exported_metrics() -> None:
    assert metric_name_problems(list(strings_in(load_dashboard())), "dashboard") == []


def test_rules_and_dashboard_use_only_exported_labels() -> None:
    texts = rule_file_texts() + rule_test_texts() + list(strings_in(load_dashboard()))

    assert label_problems(texts, "selector") == []


def test_name_check_catches_unknown_metric_and_series() -> None:
    problems = metric_name_problems(
        ["rate(agentload_event_total[5m]) + job:agentload_missing:rate5m + agentload_agents_count"],
        "example",
    )

    assert problems == [
        "example: metric 'agentload_event_total' is not in tests/metric_names.py",
        "example: recorded series 'job:agentload_missing:rate5m' is not in recording.yml",
        "example: metric 'agentload_agents_count' is not in tests/metric_names.py",
    ]


def test_label_check_catches_unknown_label() -> None:
    problems = label_problems(['agentload_agents{job="a", state="x"}'], "example")

    assert problems == ["example: agentload_agents has no label 'state' (has ['instance', 'job', 'level', 'team'])"]


def test_histogram_series_map_to_base_name() -> None:
    assert exported_metric_name("agentload_tick_duration_seconds_bucket") == "agentload_tick_duration_seconds"
    assert exported_metric_name("agentload_tick_duration_seconds_sum") == "agentload_tick_duration_seconds"
    assert exported_metric_name("agentload_tick_duration_seconds_count") == "agentload_tick_duration_seconds"
    assert exported_metric_name("agentload_events_total") == "agentload_events_total"
    assert exported_metric_name("agentload_events_total_count") is None


def test_metric_names_and_labels_cover_same_metrics() -> None:
    assert EXPORTED_LABELS.keys() == EXPORTED_METRICS.keys()


def test_dashboard_has_schema_version_and_unique_panel_ids() -> None:
    dashboard = load_dashboard()
    ids = [panel["id"] for panel in dashboard_panels()]

    assert dashboard["schemaVersion"] == 39
    assert dashboard["uid"] == "agentload"
    assert len(ids) == len(set(ids))


def test_dashboard_has_team_variable_used_by_team_panels() -> None:
    variables = {variable["name"]: variable for variable in load_dashboard()["templating"]["list"]}
    team_queries = [query for query in dashboard_queries() if "team" in query and "label_values" not in query]

    assert variables["team"]["type"] == "query"
    assert variables["team"]["multi"] is True
    assert team_queries
    for query in team_queries:
        assert 'team=~"$team"' in query, query


def test_dashboard_panels_use_datasource_variable() -> None:
    for panel in dashboard_panels():
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], panel["title"]


def test_dashboard_panels_fit_the_grid_without_overlap() -> None:
    occupied: set[tuple[int, int]] = set()
    for panel in dashboard_panels():
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & occupied, f"panel {panel['title']!r} overlaps another"
        occupied |= cells


def test_dashboard_shows_every_exported_metric() -> None:
    recording_exprs = {rule["record"]: rule["expr"] for rule in rules_of(RECORDING_RULES_FILE)}
    used = set()
    for query in dashboard_queries():
        # A recorded series stands for the metrics its recording rule reads.
        names = IDENTIFIER.findall(query)
        for name in list(names):
            if name in recording_exprs:
                names.extend(IDENTIFIER.findall(recording_exprs[name]))
        used.update(exported_metric_name(name) for name in names)

    assert set(EXPORTED_METRICS) - used == set()


def test_grafana_provisioning_reads_url_and_folder_from_environment() -> None:
    datasources = load_yaml(REPO_ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "agentload.yml")
    providers = load_yaml(REPO_ROOT / "deploy" / "grafana" / "provisioning" / "dashboards" / "agentload.yml")

    assert datasources["datasources"][0]["url"] == "${AGENTLOAD_PROMETHEUS_URL}"
    assert datasources["datasources"][0]["type"] == "prometheus"
    assert providers["providers"][0]["options"]["path"] == "${AGENTLOAD_GRAFANA_DASHBOARDS}"
