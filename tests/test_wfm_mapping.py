"""The machine-readable WFM mapping: every transition mapped, reason codes within 24 characters, and
only the start and end of a break changing the agent's state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alerts.wfm_mapping import (
    DEFAULT_REASON_CODE,
    ENTER_BREAK,
    INFORMATIONAL,
    LEAVE_BREAK,
    LEAVE_BREAK_IF_STARTED,
    MAX_REASON_CODE_CHARS,
    PREVIOUS_STATE,
    REASON_CODE_FIELDS,
    REASON_CODE_PLACEHOLDER,
    TRANSITION_TYPES,
    WFM_MAPPINGS,
    wfm_fields,
)
from streams.config import load_config

SCHEMA = Path(__file__).resolve().parent.parent / "streams" / "schemas" / "recovery-breaks.v1.json"
SYSTEMS = sorted(WFM_MAPPINGS)


def event(transition_type: str, reason_code: str = "RECOVERY_BREAK") -> dict:
    return {"type": f"io.agentload.break.{transition_type}", "data": {"reason_code": reason_code}}


def test_transition_types_match_schema():
    schema = json.loads(SCHEMA.read_text())

    assert [f"io.agentload.break.{name}" for name in TRANSITION_TYPES] == schema["properties"]["type"]["enum"]


@pytest.mark.parametrize("system", SYSTEMS)
def test_every_transition_mapped(system):
    assert set(WFM_MAPPINGS[system]) == set(TRANSITION_TYPES)


@pytest.mark.parametrize("system", SYSTEMS)
def test_reason_codes_fit_24_chars(system):
    for transition_type, entry in WFM_MAPPINGS[system].items():
        for name in REASON_CODE_FIELDS[system]:
            value = entry.fields.get(name)
            if value in (None, PREVIOUS_STATE):
                continue
            code = DEFAULT_REASON_CODE if value == REASON_CODE_PLACEHOLDER else value
            assert isinstance(code, str), (system, transition_type, name)
            assert 1 <= len(code) <= MAX_REASON_CODE_CHARS, (system, transition_type, name, code)


def test_default_reason_code_matches_config():
    params = load_config(None).params("any-team")

    assert params.reason_code == DEFAULT_REASON_CODE
    assert len(DEFAULT_REASON_CODE) <= MAX_REASON_CODE_CHARS


@pytest.mark.parametrize("system", SYSTEMS)
def test_only_start_and_end_change_state(system):
    effects = {transition_type: entry.effect for transition_type, entry in WFM_MAPPINGS[system].items()}

    assert effects == {
        "suggested": INFORMATIONAL,
        "deferred": INFORMATIONAL,
        "accepted": INFORMATIONAL,
        "declined": INFORMATIONAL,
        "expired": INFORMATIONAL,
        "started": ENTER_BREAK,
        "completed": LEAVE_BREAK,
        "cancelled": LEAVE_BREAK_IF_STARTED,
    }
    assert WFM_MAPPINGS[system]["started"].fields
    assert WFM_MAPPINGS[system]["completed"].fields == WFM_MAPPINGS[system]["cancelled"].fields


def test_verint_start_is_not_ready_with_reason_code():
    assert wfm_fields("verint", event("started", "RB_HOSTILE"), break_started=False) == {
        "eventType": 28,
        "agentMode": 5,
        "reasonCode": "RB_HOSTILE",
    }


def test_verint_completion_restores_previous_mode():
    previous = {"agentMode": 1, "reasonCode": ""}

    assert wfm_fields("verint", event("completed"), break_started=True, previous=previous) == {
        "eventType": 28,
        "agentMode": 1,
        "reasonCode": "",
    }


@pytest.mark.parametrize("transition_type", ["suggested", "deferred", "accepted", "declined", "expired"])
def test_informational_transitions_send_nothing(transition_type):
    for system in SYSTEMS:
        assert wfm_fields(system, event(transition_type), break_started=True) is None


def test_cancel_before_start_sends_nothing():
    assert wfm_fields("calabrio", event("cancelled"), break_started=False) is None


def test_cancel_after_start_leaves_break():
    assert wfm_fields("calabrio", event("cancelled"), break_started=True, previous={"StateCode": "READY"}) == {
        "StateCode": "READY",
        "IsLoggedOn": True,
    }


def test_missing_reason_code_falls_back_to_default():
    assert wfm_fields("nice", event("started", ""), break_started=False) == {"activityCode": "RECOVERY_BREAK"}


def test_unknown_system_rejected():
    with pytest.raises(KeyError, match="WFM system 'avaya' is not mapped; use one of amazon_connect, calabrio"):
        wfm_fields("avaya", event("started"), break_started=False)


def test_unknown_type_rejected():
    with pytest.raises(KeyError, match="transition type 'io.agentload.break.paused' is not a recovery-breaks type"):
        wfm_fields("nice", event("paused"), break_started=False)
