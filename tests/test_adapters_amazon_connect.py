"""Amazon Connect adapter: the published samples, snapshot diffs, and disorderly delivery."""

from __future__ import annotations

import json
import random

import pytest

from streams.adapters.amazon_connect import AmazonConnectAdapter
from streams.adapters.base import FlagRule
from streams.events import validate_call_event

INSTANCE = "arn:aws:connect:us-east-1:111122223333:instance/inst-1"


def run(adapter, documents):
    events, dead = [], []
    for document in documents:
        produced, rejected = adapter.convert(document)
        events += produced
        dead += rejected
    produced, rejected = adapter.flush()
    return events + produced, dead + rejected


def load(shared_data, name):
    return json.loads((shared_data / "amazon-connect-events" / name).read_text())


def contact(contact_id, state, state_ts, connected_ts="2026-03-02T09:00:05Z", method="INBOUND"):
    return {
        "Channel": "VOICE",
        "ContactId": contact_id,
        "InitiationMethod": method,
        "State": state,
        "StateStartTimestamp": state_ts,
        "ConnectedToAgentTimestamp": connected_ts,
        "Queue": {"ARN": f"{INSTANCE}/queue/q-1", "Name": "Billing"},
    }


def agent_event(agent, event_id, ts, status="Available", contacts=(), event_type="STATE_CHANGE",
                status_ts="2026-03-02T08:00:00Z"):
    return {
        "AgentARN": f"{INSTANCE}/agent/{agent}",
        "EventId": event_id,
        "EventTimestamp": ts,
        "EventType": event_type,
        "CurrentAgentSnapshot": {
            "AgentStatus": {"Name": status, "StartTimestamp": status_ts},
            "Configuration": {"RoutingProfile": {"ARN": f"{INSTANCE}/routing-profile/team-{agent}"}},
            "Contacts": list(contacts),
        },
        "Version": "2017-10-01",
    }


def test_heart_beat_sample_gives_current_state(shared_data):
    events, dead = run(AmazonConnectAdapter(), [load(shared_data, "agent_event_HEART_BEAT.clean.json")])

    assert dead == []
    assert events == [
        {
            "event_id": "amazon-connect:agent-ARN:EventId-1:agent_state:available",
            "type": "agent_state",
            "agent_id": "agent-ARN",
            "ts": "2019-08-13T20:52:30.704Z",
            "team_id": "routing-profile-ARN",
            "source": "amazon-connect",
            "state": "available",
            "reason": "Available",
        }
    ]


def test_acw_sample_gives_call_and_acw(shared_data):
    document = load(shared_data, "agent_event_STATE_CHANGE_contact_ENDED_enters_ACW.clean.json")

    events, dead = run(AmazonConnectAdapter(), [document])

    assert dead == []
    common = {"agent_id": "agent-ARN", "team_id": "routing-profile-ARN", "source": "amazon-connect"}
    assert events == [
        {"event_id": "amazon-connect:agent-ARN:ContactId-1:call_started", "type": "call_started",
         "ts": "2019-05-25T18:55:21.011Z", "call_id": "ContactId-1", "direction": "outbound",
         "queue": "BasicQueue", **common},
        {"event_id": "amazon-connect:agent-ARN:ContactId-1:call_ended", "type": "call_ended",
         "ts": "2019-05-25T18:55:27.017Z", "call_id": "ContactId-1", **common},
        {"event_id": "amazon-connect:agent-ARN:EventId-1:agent_state:acw", "type": "agent_state",
         "ts": "2019-05-25T18:55:27.017Z", "state": "acw", **common},
    ]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        # Contact events only link contacts to agents; the agent event stream already gives the call.
        ("contact_event_CONNECTED_TO_AGENT_detail.json",
         "contact event (used only to link contacts to agents; the agent event stream gives calls)"),
        # STARTED and COMPLETED bracket the analysis, not the call.
        ("contact_lens_rt_segment_stream_STARTED.json", "Contact Lens STARTED (marks the analysis, not the call)"),
        ("contact_lens_rt_segment_stream_COMPLETED.json", "Contact Lens COMPLETED (marks the analysis, not the call)"),
        # The rule in the sample (account cancellation) is a sales signal, not strain, so no flag by default.
        ("eventbridge_contact_lens_realtime_rules_matched.clean.json", "Contact Lens rule with no flag in rule_flags"),
        # Post-call output comes after the call and repeats the real-time signals.
        ("contact_lens_postcall_analysis_voice.clean.json",
         "Contact Lens post-call analysis (real-time segments give the same signals live)"),
    ],
)
def test_sample_deliberately_ignored(shared_data, name, reason):
    adapter = AmazonConnectAdapter()

    events, dead = run(adapter, [load(shared_data, name)])

    assert events == []
    assert dead == []
    assert dict(adapter.ignored) == {reason: 1}


def test_segments_sample_without_agent_goes_to_dead_letters(shared_data):
    document = load(shared_data, "contact_lens_rt_segment_stream_SEGMENTS.json")

    events, dead = run(AmazonConnectAdapter(), [document])

    assert events == []
    assert len(dead) == 1
    assert "contact 'the ID of the contact' cannot be linked to an agent" in dead[0][0]
    assert "send the agent event stream through the same adapter" in dead[0][0]
    assert dead[0][1] is document


def test_segments_sample_after_its_contact_gives_customer_sentiment(shared_data):
    adapter = AmazonConnectAdapter(category_flags={"CardBrokenIssue": FlagRule("escalation_request")})
    on_call = agent_event("a-7", "e-1", "2026-03-02T09:00:06Z",
                          contacts=[contact("the ID of the contact", "CONNECTED", "2026-03-02T09:00:05Z")])

    events, dead = run(adapter, [on_call, load(shared_data, "contact_lens_rt_segment_stream_SEGMENTS.json")])

    assert dead == []
    common = {"agent_id": "a-7", "team_id": "team-a-7", "call_id": "the ID of the contact", "source": "amazon-connect"}
    # Only the customer's turn is scored; the agent's NEUTRAL turn is left out on purpose. The
    # segments convert at once, while the agent event waits in the reorder buffer until the flush.
    assert [e["type"] for e in events[2:]] == ["call_started", "agent_state"]
    assert events[:2] == [
        {"event_id": "amazon-connect:the ID of the contact:the ID of the transcript:sentiment", "type": "sentiment",
         "ts": "2026-03-02T09:00:27.690Z", "speaker": "customer", "score": -0.6, "window_s": 3.68, **common},
        {"event_id": "amazon-connect:the ID of the contact:category:CardBrokenIssue", "type": "interaction_flag",
         "ts": "2026-03-02T09:00:34.690Z", "flag": "escalation_request", "speaker": "customer", **common},
    ]
    assert dict(adapter.ignored) == {"Contact Lens category with no flag in category_flags": 1}


def test_issue_flag_raised_when_configured(shared_data):
    adapter = AmazonConnectAdapter(issue_flag=FlagRule("supervisor_request"))
    on_call = agent_event("a-7", "e-1", "2026-03-02T09:00:06Z",
                          contacts=[contact("the ID of the contact", "CONNECTED", "2026-03-02T09:00:05Z")])

    events, _ = run(adapter, [on_call, load(shared_data, "contact_lens_rt_segment_stream_SEGMENTS.json")])

    flags = [event for event in events if event["type"] == "interaction_flag"]
    assert [(f["event_id"], f["flag"], f["ts"]) for f in flags] == [
        ("amazon-connect:the ID of the contact:the ID of the transcript:issue:supervisor_request",
         "supervisor_request", "2026-03-02T09:00:27.690Z")
    ]


def test_rules_matched_sample_maps_when_configured(shared_data):
    adapter = AmazonConnectAdapter(rule_flags={"ACCOUNT_CANCELLATION": FlagRule("escalation_request")})

    events, dead = run(adapter, [load(shared_data, "eventbridge_contact_lens_realtime_rules_matched.clean.json")])

    assert dead == []
    assert events == [
        {"event_id": "amazon-connect:contact-ARN:rule:ACCOUNT_CANCELLATION", "type": "interaction_flag",
         "agent_id": "agent-ARN", "ts": "2020-04-27T18:43:48.000Z", "call_id": "contact-ARN",
         "source": "amazon-connect", "flag": "escalation_request", "speaker": "customer"}
    ]


@pytest.mark.parametrize(
    "name",
    [
        "agent_event_HEART_BEAT.verbatim.txt",
        "agent_event_STATE_CHANGE_contact_ENDED_enters_ACW.verbatim.txt",
        "eventbridge_contact_lens_realtime_rules_matched.verbatim.txt",
    ],
)
def test_verbatim_sample_with_comments_is_one_dead_letter(shared_data, name, tmp_path, capsys):
    from streams.adapters.command import main

    dead_path = tmp_path / "dead.jsonl"
    code = main(["--from", "amazon-connect", str(shared_data / "amazon-connect-events" / name),
                 "--dead-letters", str(dead_path)])

    letters = [json.loads(line) for line in dead_path.read_text().splitlines()]
    assert code == 1
    assert capsys.readouterr().out == ""
    assert len(letters) == 1
    assert letters[0]["error"].startswith("input is not valid JSON (")
    assert letters[0]["value"] == (shared_data / "amazon-connect-events" / name).read_text().lstrip()


def test_verbatim_postcall_sample_surplus_brace_is_dead_letter(shared_data, tmp_path):
    from streams.adapters.command import main

    # This block parses up to one surplus closing brace: the document is ignored as post-call
    # output and the brace alone goes to dead letters.
    dead_path = tmp_path / "dead.jsonl"
    name = "contact_lens_postcall_analysis_voice.verbatim.txt"
    code = main(["--from", "amazon-connect", str(shared_data / "amazon-connect-events" / name),
                 "--dead-letters", str(dead_path)])

    letters = [json.loads(line) for line in dead_path.read_text().splitlines()]
    assert code == 1
    assert [letter["value"] for letter in letters] == ["}\n"]
    assert letters[0]["error"].startswith("input is not valid JSON (Expecting value: line 297 column 1 (char 9228))")


def shift():
    """A clean stream of three agents: calls, a hold, after-contact work, a break and a logout."""
    return [
        agent_event("a-1", "1", "2026-03-02T09:00:00Z", event_type="LOGIN", status_ts="2026-03-02T09:00:00Z"),
        agent_event("a-2", "2", "2026-03-02T09:00:01Z", event_type="LOGIN", status_ts="2026-03-02T09:00:01Z"),
        agent_event("a-3", "3", "2026-03-02T09:00:02Z", status="Training", status_ts="2026-03-02T09:00:02Z"),
        agent_event("a-1", "4", "2026-03-02T09:00:03Z", contacts=[contact("c-1", "CONNECTING", "2026-03-02T09:00:03Z", None)]),
        agent_event("a-1", "5", "2026-03-02T09:00:05Z", contacts=[contact("c-1", "CONNECTED", "2026-03-02T09:00:05Z")]),
        agent_event("a-2", "6", "2026-03-02T09:00:07Z", contacts=[
            contact("c-2", "CONNECTED", "2026-03-02T09:00:07Z", "2026-03-02T09:00:07Z", "OUTBOUND")]),
        agent_event("a-1", "7", "2026-03-02T09:01:00Z", contacts=[contact("c-1", "CONNECTED_ONHOLD", "2026-03-02T09:01:00Z")]),
        agent_event("a-1", "8", "2026-03-02T09:01:40Z", contacts=[contact("c-1", "CONNECTED", "2026-03-02T09:01:40Z")]),
        agent_event("a-2", "9", "2026-03-02T09:02:00Z", event_type="HEART_BEAT", contacts=[
            contact("c-2", "CONNECTED", "2026-03-02T09:00:07Z", "2026-03-02T09:00:07Z", "OUTBOUND")]),
        agent_event("a-1", "10", "2026-03-02T09:03:00Z", contacts=[contact("c-1", "ENDED", "2026-03-02T09:03:00Z")]),
        agent_event("a-2", "11", "2026-03-02T09:03:10Z", contacts=[
            contact("c-2", "ENDED", "2026-03-02T09:03:10Z", "2026-03-02T09:00:07Z", "OUTBOUND")]),
        agent_event("a-1", "12", "2026-03-02T09:03:45Z"),
        agent_event("a-2", "13", "2026-03-02T09:04:00Z", status="Break", status_ts="2026-03-02T09:04:00Z"),
        agent_event("a-1", "14", "2026-03-02T09:04:05Z", contacts=[contact("c-3", "CONNECTED_ONHOLD", "2026-03-02T09:04:30Z", "2026-03-02T09:04:05Z")]),
        agent_event("a-1", "15", "2026-03-02T09:05:00Z"),
        agent_event("a-2", "16", "2026-03-02T09:05:30Z", event_type="LOGOUT", status="Offline"),
    ]


def test_shift_stream_gives_expected_events():
    events, dead = run(AmazonConnectAdapter(), shift())

    assert dead == []
    for event in events:
        validate_call_event(event)
    assert [(e["agent_id"], e["type"], e.get("state") or e.get("call_id"), e["ts"]) for e in events] == [
        ("a-1", "agent_state", "available", "2026-03-02T09:00:00.000Z"),
        ("a-2", "agent_state", "available", "2026-03-02T09:00:01.000Z"),
        ("a-3", "agent_state", "off_queue", "2026-03-02T09:00:02.000Z"),
        ("a-1", "call_started", "c-1", "2026-03-02T09:00:05.000Z"),
        ("a-1", "agent_state", "on_call", "2026-03-02T09:00:05.000Z"),
        ("a-2", "call_started", "c-2", "2026-03-02T09:00:07.000Z"),
        ("a-2", "agent_state", "on_call", "2026-03-02T09:00:07.000Z"),
        ("a-1", "hold_started", "c-1", "2026-03-02T09:01:00.000Z"),
        ("a-1", "hold_ended", "c-1", "2026-03-02T09:01:40.000Z"),
        ("a-1", "call_ended", "c-1", "2026-03-02T09:03:00.000Z"),
        ("a-1", "agent_state", "acw", "2026-03-02T09:03:00.000Z"),
        ("a-2", "call_ended", "c-2", "2026-03-02T09:03:10.000Z"),
        ("a-2", "agent_state", "acw", "2026-03-02T09:03:10.000Z"),
        ("a-1", "agent_state", "available", "2026-03-02T09:03:45.000Z"),
        ("a-2", "agent_state", "break", "2026-03-02T09:04:00.000Z"),
        ("a-1", "call_started", "c-3", "2026-03-02T09:04:05.000Z"),
        ("a-1", "hold_started", "c-3", "2026-03-02T09:04:30.000Z"),
        ("a-1", "agent_state", "on_call", "2026-03-02T09:04:05.000Z"),
        # The contact vanished while on hold: the hold and the call end when the snapshot shows it.
        ("a-1", "hold_ended", "c-3", "2026-03-02T09:05:00.000Z"),
        ("a-1", "call_ended", "c-3", "2026-03-02T09:05:00.000Z"),
        ("a-1", "agent_state", "available", "2026-03-02T09:05:00.000Z"),
        ("a-2", "agent_state", "offline", "2026-03-02T09:05:30.000Z"),
    ]


def test_repeated_and_swapped_events_give_clean_event_set():
    clean, _ = run(AmazonConnectAdapter(), shift())
    disorderly = shift()
    disorderly += [disorderly[4], disorderly[9], disorderly[0]]
    for first, second in ((3, 4), (6, 7), (9, 10), (13, 14)):
        disorderly[first], disorderly[second] = disorderly[second], disorderly[first]
    random.Random(7).shuffle(disorderly[10:13])

    events, dead = run(AmazonConnectAdapter(), disorderly)

    assert dead == []
    assert sorted(json.dumps(e, sort_keys=True) for e in events) == sorted(json.dumps(e, sort_keys=True) for e in clean)


def test_heart_beat_without_change_emits_nothing():
    adapter = AmazonConnectAdapter(lateness_s=0)
    run(adapter, [agent_event("a-1", "1", "2026-03-02T09:00:00Z")])

    events, dead = run(adapter, [agent_event("a-1", "2", "2026-03-02T09:02:00Z", event_type="HEART_BEAT")])

    assert events == []
    assert dead == []


def test_snapshot_older_than_bound_does_not_undo_state():
    adapter = AmazonConnectAdapter(lateness_s=10)
    on_call = agent_event("a-1", "2", "2026-03-02T09:00:05Z", contacts=[contact("c-1", "CONNECTED", "2026-03-02T09:00:05Z")])
    heartbeat = agent_event("a-1", "3", "2026-03-02T09:02:00Z", event_type="HEART_BEAT",
                            contacts=[contact("c-1", "CONNECTED", "2026-03-02T09:00:05Z")])
    stale = agent_event("a-1", "1", "2026-03-02T09:00:00Z")

    run(adapter, [on_call, heartbeat])
    events, dead = run(adapter, [stale])

    assert events == []
    assert len(dead) == 1
    assert "older than the last applied event for that agent at 2026-03-02T09:02:00.000Z" in dead[0][0]
    assert "Raise --lateness-s" in dead[0][0]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("not an object", "amazon-connect: expected a JSON object, got str"),
        ({"hello": 1}, "amazon-connect: document is not an agent event (AgentARN, EventType)"),
        ({**agent_event("a-1", "x", "2026-03-02T09:00:00Z"), "EventType": "TELEPORT"},
         "amazon-connect: agent event 'x': EventType 'TELEPORT' is unknown"),
        ({**agent_event("a-1", "x", "2026-03-02T09:00:00Z"), "EventTimestamp": "2026-03-02 09:00"},
         "amazon-connect: agent event 'x' EventTimestamp '2026-03-02 09:00' has no UTC offset"),
        ({k: v for k, v in agent_event("a-1", "x", "2026-03-02T09:00:00Z").items() if k != "EventId"},
         "amazon-connect: agent event: EventId is missing"),
        ({**agent_event("a-1", "x", "2026-03-02T09:00:00Z"), "AgentARN": "agent-7"},
         "amazon-connect: agent event AgentARN: 'agent-7' is not an ARN with '/agent/' in it"),
    ],
)
def test_bad_input_goes_to_dead_letters_and_next_event_converts(document, message):
    adapter = AmazonConnectAdapter(lateness_s=0)

    events, dead = run(adapter, [document, agent_event("a-1", "ok", "2026-03-02T09:00:00Z")])

    assert [e["event_id"] for e in events] == ["amazon-connect:a-1:ok:agent_state:available"]
    assert len(dead) == 1
    assert dead[0][0].startswith(message)
    assert dead[0][1] == document
