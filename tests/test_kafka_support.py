"""The Kafka test support's rules for a missing broker and for topic names; no broker needed."""

from __future__ import annotations

import re

import pytest

from tests.kafka_support import MAX_TOPIC_NAME_LENGTH, require_bootstrap_servers, topic_prefix

VALID_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]+")


def test_bootstrap_servers_returned_when_set() -> None:
    environ = {"KAFKA_BOOTSTRAP_SERVERS": " 127.0.0.1:19092 ", "CI": "true"}

    assert require_bootstrap_servers(environ) == "127.0.0.1:19092"


def test_missing_bootstrap_servers_fails_under_ci() -> None:
    with pytest.raises(pytest.fail.Exception, match="KAFKA_BOOTSTRAP_SERVERS is not set"):
        require_bootstrap_servers({"CI": "true"})


def test_empty_bootstrap_servers_fails_under_ci() -> None:
    with pytest.raises(pytest.fail.Exception, match="CI must run the Kafka tests"):
        require_bootstrap_servers({"CI": "1", "KAFKA_BOOTSTRAP_SERVERS": ""})


@pytest.mark.parametrize("ci", [None, "", "false", "0"])
def test_missing_bootstrap_servers_skips_outside_ci(ci: str | None) -> None:
    environ = {} if ci is None else {"CI": ci}

    with pytest.raises(pytest.skip.Exception, match="KAFKA_BOOTSTRAP_SERVERS is not set"):
        require_bootstrap_servers(environ)


def test_topic_prefix_makes_valid_names() -> None:
    prefix = topic_prefix("test_round_trip[agent_1/β]", run_id="0123456789")

    assert prefix == "agentload-test.0123456789.test-round-trip-agent-1"
    assert VALID_TOPIC_NAME.fullmatch(prefix)


def test_topic_prefix_differs_per_run_and_test() -> None:
    prefixes = {
        topic_prefix("test_a", run_id="run1"),
        topic_prefix("test_b", run_id="run1"),
        topic_prefix("test_a", run_id="run2"),
    }

    assert len(prefixes) == 3


def test_topic_prefix_leaves_room_for_a_suffix() -> None:
    prefix = topic_prefix("x" * 400, run_id="0123456789")

    assert len(prefix) == MAX_TOPIC_NAME_LENGTH - 60
