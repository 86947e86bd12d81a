"""Twilio TaskRouter and Genesys Cloud adapters: the published samples and a call's lifecycle."""

from __future__ import annotations

import json

import pytest

from streams.adapters.genesys import GenesysCloudAdapter
from streams.adapters.twilio import TwilioTaskRouterAdapter


def run(adapter, documents):
    events, dead = [], []
    for document in documents:
        produced, rejected = adapter.convert(document)
        events += produced
        dead += rejected
    produced, rejected = adapter.flush()
    return events + produced, dead + rejected


def twilio_event(sid, event_type, date, **data):
    return {"sid": sid, "event_type": event_type, "event_date": date,
            "event_data": {"worker_sid": "WK1", "worker_attributes": '{"team":"cases"}', **data}}


def test_twilio_events_page_sample(shared_data):
    adapter = TwilioTaskRouterAdapter(team_attribute="type")
    page = json.loads((shared_data / "twilio-taskrouter-events" /
                       "events_list_worker_activity_update_and_reservation_created.json").read_text())

    events, dead = run(adapter, [page])

    assert dead == []
    # Ready maps to available; the offered reservation and the Reserved activity change nothing.
    assert events == [
        {"event_id": "twilio:WKa0f24176fee1938e495760b1122995b6:EVfddc1f055300995f76cf65ef99df05cf:agent_state:available",
         "type": "agent_state", "agent_id": "WKa0f24176fee1938e495760b1122995b6", "ts": "2015-07-31T23:36:33.000Z",
         "team_id": "cases", "source": "twilio", "state": "available", "reason": "Ready"}
    ]
    assert dict(adapter.ignored) == {"reservation.created (reservation offered, not yet accepted)": 1}


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        # REST reads of resources, not events: the events themselves say when the state changed.
        ("reservation_instance.json", "reservation resource (a REST read, not an event; the events say when it changed)"),
        ("task_instance.json", "task resource (a REST read, not an event; the events say when it changed)"),
        # Aggregates over an interval cannot be placed at a moment.
        ("worker_statistics.json", "statistics resource (aggregates over an interval, not events)"),
    ],
)
def test_twilio_resource_samples_ignored(shared_data, name, reason):
    adapter = TwilioTaskRouterAdapter()

    events, dead = run(adapter, [json.loads((shared_data / "twilio-taskrouter-events" / name).read_text())])

    assert (events, dead) == ([], [])
    assert dict(adapter.ignored) == {reason: 1}


def test_twilio_call_lifecycle_with_wrapup():
    stream = [
        twilio_event("EV1", "worker.activity.update", "2026-03-02T09:00:00Z", worker_activity_name="Available"),
        twilio_event("EV2", "reservation.accepted", "2026-03-02T09:00:10Z", task_sid="WT1",
                     task_attributes='{"direction":"inbound"}', task_queue_name="Everyone"),
        twilio_event("EV3", "worker.activity.update", "2026-03-02T09:00:10Z", worker_activity_name="Busy"),
        twilio_event("EV4", "reservation.wrapup", "2026-03-02T09:04:00Z", task_sid="WT1"),
        {"sid": "EV5", "event_type": "task.completed", "event_date": "2026-03-02T09:05:00Z",
         "event_data": {"task_sid": "WT1"}},
        twilio_event("EV6", "worker.activity.update", "2026-03-02T09:05:00Z", worker_activity_name="Break"),
    ]

    events, dead = run(TwilioTaskRouterAdapter(), stream + stream[1:3])

    assert dead == []
    assert [(e["event_id"], e["ts"], e.get("state"), e.get("reason")) for e in events] == [
        ("twilio:WK1:EV1:agent_state:available", "2026-03-02T09:00:00.000Z", "available", "Available"),
        ("twilio:WK1:WT1:call_started", "2026-03-02T09:00:10.000Z", None, None),
        ("twilio:WK1:EV2:agent_state:on_call", "2026-03-02T09:00:10.000Z", "on_call", None),
        ("twilio:WK1:WT1:call_ended", "2026-03-02T09:04:00.000Z", None, None),
        ("twilio:WK1:EV4:agent_state:acw", "2026-03-02T09:04:00.000Z", "acw", None),
        ("twilio:WK1:EV5:agent_state:available", "2026-03-02T09:05:00.000Z", "available", "Busy"),
        ("twilio:WK1:EV6:agent_state:break", "2026-03-02T09:05:00.000Z", "break", "Break"),
    ]
    assert events[1]["direction"] == "inbound"
    assert events[1]["queue"] == "Everyone"
    assert {e["team_id"] for e in events} == {"cases"}


def test_twilio_callback_form_fields_convert():
    callback = {"Sid": "EV9", "EventType": "worker.activity.update", "Timestamp": "1772442000",
                "WorkerSid": "WK2", "WorkerActivityName": "Offline"}

    events, dead = run(TwilioTaskRouterAdapter(), [callback])

    assert dead == []
    assert [(e["agent_id"], e["state"], e["ts"]) for e in events] == [("WK2", "offline", "2026-03-02T09:00:00.000Z")]


def test_twilio_unknown_event_type_is_dead_letter():
    events, dead = run(TwilioTaskRouterAdapter(), [
        twilio_event("EV1", "worker.teleported", "2026-03-02T09:00:00Z"),
        twilio_event("EV2", "workflow.exploded", "2026-03-02T09:00:00Z"),
        twilio_event("EV3", "worker.activity.update", "2026-03-02T09:00:01Z", worker_activity_name="Available"),
    ])

    assert [e["event_id"] for e in events] == ["twilio:WK1:EV3:agent_state:available"]
    assert [error for error, _ in dead] == [
        "twilio: event 'EV2': event_type 'workflow.exploded' is not a TaskRouter worker, reservation or "
        "task event this adapter knows"
    ]


def genesys(kind, conversation, event_time_ms, envelope_id, **body):
    return {
        "version": "0", "id": envelope_id, "detail-type": f"v2.detail.events.conversation.{{id}}.{kind}",
        "source": "aws.partner/genesys.com/cloud/org/bus", "time": "2026-03-02T09:00:00Z",
        "detail": {"topicName": f"v2.detail.events.conversation.{conversation}.{kind}", "version": "2",
                   "eventBody": {"eventTime": event_time_ms, "conversationId": conversation, "mediaType": "VOICE",
                                 "userId": "u-1", "sessionId": "s-1", **body}},
    }


def presence(envelope_id, event_time, old, new):
    return {
        "version": "0", "id": envelope_id, "detail-type": "v2.audits.entitytype.{id}.entityid.{id}",
        "detail": {"topicName": "v2.audits.entitytype.UserPresence.entityid.u-1", "version": "2",
                   "eventBody": {"id": f"audit-{envelope_id}", "userId": "u-1", "serviceName": "Presence",
                                 "eventTime": event_time, "action": "Update", "entityType": "UserPresence",
                                 "entity": {"id": "u-1"},
                                 "propertyChanges": [{"property": "PRESENCE", "oldValues": [old], "newValues": [new]}]}},
    }


@pytest.mark.parametrize(
    "name",
    ["eventbridge_conversation_customer_start.json", "eventbridge_conversation_customer_end.json"],
)
def test_genesys_customer_samples_ignored(shared_data, name):
    adapter = GenesysCloudAdapter()

    events, dead = run(adapter, [json.loads((shared_data / "genesys-cloud-events" / name).read_text())])

    # The customer side names no agent; the agent's side arrives on the user.* topics.
    assert (events, dead) == ([], [])
    kind = name.removeprefix("eventbridge_conversation_").removesuffix(".json").replace("_", ".")
    assert dict(adapter.ignored) == {f"conversation {kind} (names no agent)": 1}


def test_genesys_call_acw_and_presence():
    stream = [
        presence("p1", "2026-03-02T09:00:00.000Z", "Offline", "On Queue"),
        genesys("user.start", "conv-1", 1772442010000, "g1", direction="INBOUND", queueId="q-1"),
        presence("p2", "2026-03-02T09:01:00.000Z", "On Queue", "Break"),
        genesys("user.end", "conv-1", 1772442200000, "g2", disconnectType="TRANSFER"),
        genesys("acw", "conv-1", 1772442230000, "g3", wrapupCode="sale", wrapupDurationMs=30000),
    ]

    events, dead = run(GenesysCloudAdapter(), stream + stream[:2])

    assert dead == []
    assert [(e["event_id"], e["ts"], e.get("state"), e.get("reason")) for e in events] == [
        ("genesys:u-1:p1:agent_state:available", "2026-03-02T09:00:00.000Z", "available", "On Queue"),
        ("genesys:u-1:conv-1:call_started", "2026-03-02T09:00:10.000Z", None, None),
        ("genesys:u-1:g1:agent_state:on_call", "2026-03-02T09:00:10.000Z", "on_call", None),
        ("genesys:u-1:conv-1:call_ended", "2026-03-02T09:03:20.000Z", None, None),
        ("genesys:u-1:g2:agent_state:acw", "2026-03-02T09:03:20.000Z", "acw", None),
        # The break set during the call takes effect once the wrap-up is submitted.
        ("genesys:u-1:g3:agent_state:break", "2026-03-02T09:03:50.000Z", "break", "Break"),
    ]
    assert events[1]["direction"] == "inbound"
    assert events[1]["queue"] == "q-1"
    assert events[3]["disposition"] == "transferred"


def test_genesys_unknown_topic_is_dead_letter():
    document = {"detail": {"topicName": "v2.users.u-1.routingStatus", "eventBody": {}}}

    events, dead = run(GenesysCloudAdapter(), [document, presence("p1", "2026-03-02T09:00:00.000Z", "Offline", "Meal")])

    assert [e["state"] for e in events] == ["break"]
    assert len(dead) == 1
    assert dead[0][0].startswith("genesys: topic 'v2.users.u-1.routingStatus' is not one this adapter converts")
