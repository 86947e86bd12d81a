"""Break actions taken by people: what each button means on the ``break-actions`` contract.

The floor view (supervisor) and the agent view offer a few buttons. Each press becomes one
``break-actions`` event, built and validated here, and handed to a sink. In the embedded runtime
the sink submits the event to the engine. A Faust runtime would produce the same JSON to the
``break-actions`` topic, keyed by ``agent_id``. Nothing here does I/O or reads a clock.

A supervisor's "defer" has no action of its own on the contract. It is sent as ``decline`` by
actor ``supervisor`` with the note :data:`DEFER_NOTE`: the offer ends now, and because the
policy's cooldown restarts at the suggestion, the agent is offered a break again when a trigger
fires after the cooldown.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from alerts.policy import DEFERRED, OPEN_STATUSES, SUGGESTED
from streams.engine import Engine, Origin
from streams.codec import dumps
from streams.events import BREAK_ACTIONS, InvalidEventError, format_ts, validate_break_action

SUPERVISOR = "supervisor"
AGENT = "agent"

DEFER_NOTE = "deferred by supervisor"

# A sink takes one validated break-actions document and delivers it to the engine or the topic.
BreakActionSink = Callable[[dict], None]


@dataclass(frozen=True)
class ButtonAction:
    """One button of a view: the contract action it sends, as which actor, and when it applies.

    ``statuses`` are the break statuses the button applies to; ``None`` means the button opens a
    new break, so the agent must have none open.
    """

    name: str
    action: str
    actor: str
    statuses: frozenset[str] | None
    note: str | None = None


SUPERVISOR_ACTIONS = {
    # Approving a deferred break overrides the team's limit on purpose: a person decided.
    "approve": ButtonAction("approve", "accept", SUPERVISOR, frozenset((SUGGESTED, DEFERRED))),
    "defer": ButtonAction("defer", "decline", SUPERVISOR, frozenset((SUGGESTED, DEFERRED)), DEFER_NOTE),
    "cancel": ButtonAction("cancel", "cancel", SUPERVISOR, OPEN_STATUSES),
}

AGENT_ACTIONS = {
    "request": ButtonAction("request", "request", AGENT, None),
    # A deferred break waits for a place under the team's limit, so the agent cannot take it
    # early; the agent may still decline it.
    "accept": ButtonAction("accept", "accept", AGENT, frozenset((SUGGESTED,))),
    "decline": ButtonAction("decline", "decline", AGENT, frozenset((SUGGESTED, DEFERRED))),
}


class ActionRejected(ValueError):
    """A button press that cannot apply now. Its message explains why and what to do instead."""


def check_action(button: ButtonAction, agent_id: str, break_id: str | None, status: str | None) -> None:
    """Raise :class:`ActionRejected` unless ``button`` applies to a break in ``status``.

    ``status`` is the break's current status, or ``None`` when the agent has no open break.
    The engine stays the authority, because it applies actions in event-time order. This check
    only turns presses that cannot work into an immediate error response.
    """
    if button.statuses is None:
        if status is not None:
            raise ActionRejected(
                f"agent {agent_id} already has break {break_id} open ({status}); accept or decline that one first"
            )
        return
    if status is None:
        raise ActionRejected(
            f"break {break_id} of agent {agent_id} is not open any more; reload the view to see its outcome"
        )
    if status not in button.statuses:
        allowed = ", ".join(sorted(button.statuses))
        raise ActionRejected(
            f"break {break_id} of agent {agent_id} is {status}, so '{button.name}' cannot apply; "
            f"it applies to a break that is {allowed}"
        )


def build_break_action(
    button: ButtonAction,
    agent_id: str,
    ts: float,
    break_id: str | None = None,
    note: str | None = None,
    event_id: str | None = None,
) -> dict:
    """Build and validate the ``break-actions`` document for one press of ``button``.

    ``ts`` is the runtime's current event time in seconds since the Unix epoch. ``note`` is the
    person's own note; a button's fixed note (such as :data:`DEFER_NOTE`) comes first. Raises
    :class:`~streams.events.InvalidEventError` if the result breaks the contract.
    """
    document = {
        "event_id": event_id or f"floor-{uuid.uuid4().hex}",
        "agent_id": agent_id,
        "ts": format_ts(ts),
        "action": button.action,
        "actor": button.actor,
    }
    if break_id is not None:
        document["break_id"] = break_id
    notes = [text for text in (button.note, note) if text]
    if notes:
        document["note"] = "; ".join(notes)
    validate_break_action(document)
    return document


def engine_sink(engine: Engine) -> BreakActionSink:
    """Return a sink that submits each break action to ``engine``, as the embedded runtime does."""

    def submit(document: dict) -> None:
        try:
            event = validate_break_action(document)
        except InvalidEventError as exc:
            engine.reject(str(exc), "invalid_event", _origin(document), "break_action")
            return
        engine.submit(event, _origin(document))

    return submit


def _origin(document: dict) -> Origin:
    return Origin(BREAK_ACTIONS, None, None, document.get("agent_id"), dumps(document))
