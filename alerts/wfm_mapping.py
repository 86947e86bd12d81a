"""The mapping of recovery-break transitions to the real-time agent states that WFM systems take.

WFM real-time adherence counts a break as excused time when the agent is in a dedicated state or
reason code that the WFM maps to an excused activity. Only two moments change that state: the
break starting, and a started break ending (``completed``, or ``cancelled`` after ``started``).
Every other transition is informational and must not move the agent's state.

``WFM_MAPPINGS[system][transition_type]`` gives the adherence effect and the target system's fields.
Field values written ``{reason_code}`` take the event's ``data.reason_code``. The state and reason
names (``RECOVERY_BREAK``, ``RecoveryBreak``) are our recommendation, each to be created in the
target system. docs/wfm-mapping.md gives the sources of each system's fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from alerts.policy import ACCEPTED, CANCELLED, COMPLETED, DECLINED, DEFERRED, EXPIRED, STARTED, SUGGESTED

TRANSITION_TYPES = (SUGGESTED, DEFERRED, ACCEPTED, DECLINED, EXPIRED, STARTED, COMPLETED, CANCELLED)

# Maximum length of a reason code in Verint's RTA feed. The recovery-breaks schema has the same limit.
MAX_REASON_CODE_CHARS = 24
DEFAULT_REASON_CODE = "RECOVERY_BREAK"
REASON_CODE_PLACEHOLDER = "{reason_code}"

# Adherence effects.
INFORMATIONAL = "informational"
ENTER_BREAK = "enter_break"
LEAVE_BREAK = "leave_break"
# ``cancelled`` ends a break that had started, and is informational for one that had not.
LEAVE_BREAK_IF_STARTED = "leave_break_if_started"

# Field names, per system, whose values are reason or state codes limited to MAX_REASON_CODE_CHARS.
REASON_CODE_FIELDS = {
    "nice": ("activityCode",),
    "verint": ("reasonCode",),
    "calabrio": ("StateCode",),
    "genesys": ("secondaryPresence",),
    "amazon_connect": ("agentStatusName",),
    "webex": ("idleCodeName",),
    "twilio": ("activityFriendlyName",),
}


@dataclass(frozen=True)
class WfmEntry:
    """The adherence effect of one transition in one system, and the fields to send for it."""

    effect: str
    fields: Mapping[str, object] = field(default_factory=dict)


def _table(enter: Mapping[str, object], leave: Mapping[str, object]) -> dict[str, WfmEntry]:
    table = {transition_type: WfmEntry(INFORMATIONAL) for transition_type in TRANSITION_TYPES}
    table[STARTED] = WfmEntry(ENTER_BREAK, enter)
    table[COMPLETED] = WfmEntry(LEAVE_BREAK, leave)
    table[CANCELLED] = WfmEntry(LEAVE_BREAK_IF_STARTED, leave)
    return table


# Leaving a break restores the state the agent had before it, as Webex's wellbeing break does.
# ``"{previous}"`` marks those values. The ACD's own feed then reports the agent's real state.
PREVIOUS_STATE = "{previous}"

WFM_MAPPINGS: dict[str, dict[str, WfmEntry]] = {
    # Agent state events through the third-party ACD SDK; activity codes are mapped in the WFM UI.
    "nice": _table(
        enter={"activityCode": REASON_CODE_PLACEHOLDER},
        leave={"activityCode": PREVIOUS_STATE},
    ),
    # RTA feed: eventType 28 is a state change, agentMode 5 is Not Ready.
    "verint": _table(
        enter={"eventType": 28, "agentMode": 5, "reasonCode": REASON_CODE_PLACEHOLDER},
        leave={"eventType": 28, "agentMode": PREVIOUS_STATE, "reasonCode": PREVIOUS_STATE},
    ),
    # SaveBatchExternalUserState; the StateCode must exist in an RTA state group.
    "calabrio": _table(
        enter={"StateCode": REASON_CODE_PLACEHOLDER, "StateDescription": "Recovery break", "IsLoggedOn": True},
        leave={"StateCode": PREVIOUS_STATE, "IsLoggedOn": True},
    ),
    # Primary status Break with an admin-defined secondary status.
    "genesys": _table(
        enter={"systemPresence": "Break", "secondaryPresence": "RecoveryBreak"},
        leave={"systemPresence": PREVIOUS_STATE, "secondaryPresence": PREVIOUS_STATE},
    ),
    # PutUserStatus with a custom agent status; on a contact it becomes the next status.
    "amazon_connect": _table(
        enter={"agentStatusName": "RecoveryBreak"},
        leave={"agentStatusName": PREVIOUS_STATE},
    ),
    # Agents API state Idle with an idle code; the code's auxCodeId is looked up by its name.
    "webex": _table(
        enter={"state": "Idle", "idleCodeName": "RecoveryBreak", "lastStateChangeReason": "recovery break"},
        leave={"state": PREVIOUS_STATE, "idleCodeName": PREVIOUS_STATE},
    ),
    # A TaskRouter Activity with Available=false; Flex RTA reports worker activity changes.
    "twilio": _table(
        enter={"activityFriendlyName": "RecoveryBreak", "available": False},
        leave={"activityFriendlyName": PREVIOUS_STATE},
    ),
}


def wfm_fields(
    system: str, event: dict, break_started: bool, previous: Mapping[str, object] | None = None
) -> dict | None:
    """Return the fields to send to ``system`` for a recovery-breaks CloudEvent, or None to send nothing.

    ``break_started`` tells whether this break had a ``started`` event before, which decides
    whether ``cancelled`` ends a break. ``previous`` holds the agent's fields from before the
    break, by field name; a restoring field missing from it is None. Raises KeyError naming the
    system or type when either is unknown.
    """
    try:
        table = WFM_MAPPINGS[system]
    except KeyError:
        raise KeyError(f"WFM system {system!r} is not mapped; use one of {', '.join(sorted(WFM_MAPPINGS))}") from None
    transition_type = event["type"].rpartition(".")[2]
    try:
        entry = table[transition_type]
    except KeyError:
        raise KeyError(f"transition type {event['type']!r} is not a recovery-breaks type") from None

    if entry.effect == INFORMATIONAL or (entry.effect == LEAVE_BREAK_IF_STARTED and not break_started):
        return None
    reason_code = event["data"].get("reason_code") or DEFAULT_REASON_CODE
    fields = {}
    for name, value in entry.fields.items():
        if value == REASON_CODE_PLACEHOLDER:
            value = reason_code
        elif value == PREVIOUS_STATE:
            value = (previous or {}).get(name)
        fields[name] = value
    return fields
