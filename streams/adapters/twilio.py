"""Twilio TaskRouter: worker activity and reservation/task events.

TaskRouter sends deltas, not snapshots: ``worker.activity.update`` when a worker's activity
changes, ``reservation.*`` when a task is offered to, accepted by or wrapped up by a worker, and
``task.*`` for the task as a whole. A call is a task a worker accepted: it starts at
``reservation.accepted`` and ends at ``reservation.wrapup`` or ``reservation.completed`` (or at
the matching ``task.*`` event). Accepted form: the REST Events resource (one event, or the
``events`` page), or the event callback's form fields as a JSON object (``EventType``,
``WorkerSid``, ``Timestamp`` …), which carry the same fields in CamelCase.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from streams.adapters.base import (
    DEFAULT_LATENESS_S,
    Adapter,
    NativeEventError,
    Result,
    check_status_states,
    make_event_id,
    parse_json_attributes,
    read_ts,
    require_str,
    state_for_status,
)

SOURCE = "twilio"

# Activity names of Twilio's default and older demo workspaces. None: the activity follows the
# worker's tasks (TaskRouter moves workers to Busy or Reserved itself), so the tasks decide.
DEFAULT_STATUS_STATES: dict[str, str | None] = {
    "available": "available",
    "ready": "available",
    "idle": "available",
    "offline": "offline",
    "unavailable": "off_queue",
    "not ready": "off_queue",
    "break": "break",
    "lunch": "break",
    "wrap up": "acw",
    "wrapup": "acw",
    "wrapping": "acw",
    "busy": None,
    "reserved": None,
}

_CALL_END_DISPOSITIONS = {"task.canceled": "abandoned", "reservation.canceled": "abandoned",
                          "reservation.rescinded": None}

_IGNORED_EVENT_TYPES = {
    "reservation.created": "reservation offered, not yet accepted",
    "reservation.rejected": "reservation declined before any work",
    "reservation.timeout": "reservation not answered before any work",
    "task.created": "task events without an accepted reservation",
    "task.updated": "task events without an accepted reservation",
    "task-queue.entered": "queue events name no worker",
}


@dataclass(slots=True)
class _Worker:
    activity_state: str | None = None
    activity_name: str | None = None
    live: set[str] = field(default_factory=set)
    wrapping: set[str] = field(default_factory=set)
    state: tuple[str, str | None] | None = None
    team_id: str | None = None


class TwilioTaskRouterAdapter(Adapter):
    """Convert TaskRouter events into canonical call events.

    ``team_attribute`` names the worker attribute (in ``worker_attributes``) that holds the
    worker's team; ``None`` leaves ``team_id`` out.
    """

    source = SOURCE

    def __init__(
        self,
        *,
        lateness_s: float = DEFAULT_LATENESS_S,
        status_states: Mapping[str, str | None] | None = None,
        team_attribute: str | None = "team",
    ) -> None:
        super().__init__(lateness_s=lateness_s)
        self.status_states = check_status_states(DEFAULT_STATUS_STATES if status_states is None else status_states)
        self.team_attribute = team_attribute
        self._workers: dict[str, _Worker] = {}
        self._task_workers: dict[str, set[str]] = {}

    def _convert_document(self, document: object) -> Result:
        if not isinstance(document, dict):
            raise NativeEventError(f"expected a JSON object, got {type(document).__name__}")

        if isinstance(document.get("events"), list):
            return self._event_page(document["events"])
        if "event_type" in document:
            return self._rest_event(document)
        if "EventType" in document:
            return self._callback(document)
        if "reservation_status" in document:
            return self._ignore("reservation resource (a REST read, not an event; the events say when it changed)")
        if "assignment_status" in document:
            return self._ignore("task resource (a REST read, not an event; the events say when it changed)")
        if "cumulative" in document or "realtime" in document:
            return self._ignore("statistics resource (aggregates over an interval, not events)")
        raise NativeEventError(
            "document is not a TaskRouter event: expected an Events page (events), one REST event "
            f"(event_type, event_data) or callback fields (EventType); its keys are {', '.join(sorted(document)[:12])}"
        )

    def _event_page(self, items: list) -> Result:
        events: list[dict] = []
        dead: list = []
        for item in items:
            produced, rejected = self.convert(item)
            events.extend(produced)
            dead.extend(rejected)
        return events, dead

    def _rest_event(self, document: dict) -> Result:
        what = "TaskRouter event"
        event_id = require_str(document, "sid", what)
        event_type = require_str(document, "event_type", f"{what} {event_id!r}")
        ts = read_ts(document.get("event_date"), f"{what} {event_id!r} event_date")
        data = document.get("event_data")
        if not isinstance(data, dict):
            raise NativeEventError(f"{what} {event_id!r} has no event_data object")
        return self._event_data(event_id, event_type, ts, data, document)

    def _callback(self, document: dict) -> Result:
        what = "TaskRouter callback"
        event_id = require_str(document, "Sid", what) if "Sid" in document else require_str(document, "EventSid", what)
        event_type = require_str(document, "EventType", f"{what} {event_id!r}")
        stamp = document.get("Timestamp")
        try:
            ts = float(stamp)
        except (TypeError, ValueError):
            raise NativeEventError(f"{what} {event_id!r}: Timestamp {stamp!r} is not epoch seconds") from None
        data = {_snake_case(key): value for key, value in document.items()}
        return self._event_data(event_id, event_type, ts, data, document)

    def _event_data(self, event_id: str, event_type: str, ts: float, data: dict, original: object) -> Result:
        if event_type in _IGNORED_EVENT_TYPES:
            return self._ignore(f"{event_type} ({_IGNORED_EVENT_TYPES[event_type]})")

        if event_type.startswith("task."):
            task_sid = require_str(data, "task_sid", f"{event_type} {event_id!r}")
            workers = sorted(self._task_workers.get(task_sid, ()))
            if not workers:
                return self._ignore("task event for a task no worker has accepted")
            events: list[dict] = []
            dead: list = []
            for worker_sid in workers:
                produced, rejected = self._submit(
                    worker_sid, ts, event_id, original,
                    lambda worker_sid=worker_sid: self._apply(worker_sid, event_id, event_type, ts, data),
                )
                events.extend(produced)
                dead.extend(rejected)
            return events, dead

        if event_type == "worker.activity.update" or event_type.startswith("reservation."):
            worker_sid = require_str(data, "worker_sid", f"{event_type} {event_id!r}")
            if event_type == "reservation.accepted":
                # Linked on arrival so that task events queued behind it find their worker.
                task_sid = require_str(data, "task_sid", f"{event_type} {event_id!r}")
                self._task_workers.setdefault(task_sid, set()).add(worker_sid)
            return self._submit(
                worker_sid, ts, event_id, original, lambda: self._apply(worker_sid, event_id, event_type, ts, data)
            )

        if event_type.startswith("worker."):
            return self._ignore(f"{event_type} (worker lifecycle or attribute change, not a state)")
        raise NativeEventError(
            f"event {event_id!r}: event_type {event_type!r} is not a TaskRouter worker, reservation or task "
            "event this adapter knows"
        )

    def _apply(self, worker_sid: str, event_id: str, event_type: str, ts: float, data: dict) -> list[dict]:
        worker = self._workers.setdefault(worker_sid, _Worker())
        team_id = self._team_of(data) or worker.team_id
        worker.team_id = team_id
        events: list[dict] = []
        task_sid = data.get("task_sid")

        if event_type == "worker.activity.update":
            name = require_str(data, "worker_activity_name", f"{event_type} {event_id!r}")
            worker.activity_name = name
            worker.activity_state = state_for_status(self.status_states, name)
        elif event_type == "reservation.accepted":
            if task_sid not in worker.live and task_sid not in worker.wrapping:
                worker.live.add(task_sid)
                attributes = parse_json_attributes(data.get("task_attributes"), f"{event_type} {event_id!r} task_attributes")
                direction = attributes.get("direction")
                events.append(
                    self._event(
                        "call_started",
                        make_event_id(SOURCE, worker_sid, task_sid, "call_started"),
                        worker_sid,
                        ts,
                        team_id=team_id,
                        call_id=task_sid,
                        direction=direction if direction in ("inbound", "outbound") else None,
                        queue=data.get("task_queue_name"),
                    )
                )
        elif event_type in ("reservation.wrapup", "task.wrapup"):
            if task_sid in worker.live:
                events.append(self._call_end(worker_sid, team_id, task_sid, ts, None))
                worker.live.discard(task_sid)
                worker.wrapping.add(task_sid)
        elif event_type in ("reservation.completed", "task.completed", "reservation.canceled", "task.canceled",
                            "reservation.rescinded", "task.deleted"):
            if task_sid in worker.live:
                events.append(self._call_end(worker_sid, team_id, task_sid, ts, _CALL_END_DISPOSITIONS.get(event_type)))
            worker.live.discard(task_sid)
            worker.wrapping.discard(task_sid)
            holders = self._task_workers.get(task_sid)
            if holders is not None:
                holders.discard(worker_sid)
                if not holders:
                    del self._task_workers[task_sid]
        else:
            self.ignored[f"{event_type} (no change to calls or state)"] += 1
            return []

        state = self._state_of(worker)
        if state is not None and state != worker.state:
            events.append(
                self._event(
                    "agent_state",
                    make_event_id(SOURCE, worker_sid, event_id, "agent_state", state[0]),
                    worker_sid,
                    ts,
                    team_id=team_id,
                    state=state[0],
                    reason=state[1],
                )
            )
            worker.state = state
        return events

    def _call_end(self, worker_sid: str, team_id: str | None, task_sid: str, ts: float, disposition: str | None) -> dict:
        return self._event(
            "call_ended",
            make_event_id(SOURCE, worker_sid, task_sid, "call_ended"),
            worker_sid,
            ts,
            team_id=team_id,
            call_id=task_sid,
            disposition=disposition,
        )

    def _state_of(self, worker: _Worker) -> tuple[str, str | None] | None:
        if worker.live:
            return "on_call", None
        if worker.wrapping:
            return "acw", None
        if worker.activity_state is not None:
            return worker.activity_state, worker.activity_name
        if worker.state is not None and worker.state[0] in ("on_call", "acw"):
            # The last task is done but the activity still reads Busy: the worker waits for the next one.
            return "available", worker.activity_name
        # Reserved (a task offered) or Busy before any task was seen changes nothing.
        return None

    def _team_of(self, data: dict) -> str | None:
        if self.team_attribute is None or "worker_attributes" not in data:
            return None
        attributes = parse_json_attributes(data["worker_attributes"], "worker_attributes")
        team = attributes.get(self.team_attribute)
        return str(team) if team not in (None, "") else None


def _snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()

