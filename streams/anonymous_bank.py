"""Reader for the Technion "Anonymous Bank" call-center records (Brown et al., JASA 2005).

Each row is one call that entered the bank's call center in 1999. A served call (``outcome``
AGENT with a named ``server``) becomes a ``call_started`` and a ``call_ended`` for that agent;
the time between an agent's calls is time available. The records carry no agent states, holds,
transfers or sentiment, so only handle time, back-to-back calls and time on calls drive the load.

Quirks handled here:

- ``date`` is ``YYMMDD`` (``990801``) in the original monthly files; copies that went through a
  spreadsheet show it as an ISO date with the wrong year (``2010-08-01`` for ``990801``), so the
  year of an ISO date is replaced with 1999.
- Times are ``H:MM:SS`` local time without a zone; ``utc_offset`` supplies it (Israel was on
  daylight time, +03:00, in August 1999). A service that ends before it starts crossed midnight.
- ``0:00:00`` means "did not happen"; PHANTOM rows are virtual calls to be ignored.
- A service shorter than a second has no duration to count and yields no events.
- The data has a few overlapping services of one agent; the earlier one is cut at the start of
  the later one, because the engine follows one call per agent.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from streams.events import TYPE_RANK, format_ts

SOURCE = "anonymous-bank"
DATA_YEAR = 1999
REQUIRED_COLUMNS = ("vru+line", "call_id", "date", "ser_start", "ser_exit", "outcome", "server")


class AnonymousBankError(ValueError):
    """A file that is not in the Anonymous Bank record format."""


@dataclass
class ReadStats:
    """What the reader found in the records."""

    rows: int = 0
    served_calls: int = 0
    agents: set[str] = field(default_factory=set)
    zero_length_calls: int = 0
    overlaps_cut: int = 0
    skipped: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def parse_date(text: str) -> date:
    """Parse a record date written as ``YYMMDD`` or as an ISO date with a wrong year."""
    text = text.strip()
    if len(text) == 6 and text.isdigit():
        return date(1900 + int(text[:2]) if int(text[:2]) >= 50 else 2000 + int(text[:2]), int(text[2:4]), int(text[4:]))
    try:
        parsed = date.fromisoformat(text)
    except ValueError:
        raise AnonymousBankError(f"date {text!r} is neither YYMMDD (990801) nor an ISO date (2010-08-01)") from None
    return parsed.replace(year=DATA_YEAR)


def parse_clock_s(text: str) -> int:
    """Parse ``H:MM:SS`` into seconds after midnight."""
    parts = text.strip().split(":")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        raise AnonymousBankError(f"time {text!r} is not H:MM:SS")
    hours, minutes, seconds = (int(part) for part in parts)
    return hours * 3600 + minutes * 60 + seconds


def parse_offset(text: str) -> timezone:
    """Parse a UTC offset such as ``+03:00`` or ``Z``."""
    if text in ("Z", "z"):
        return timezone.utc
    try:
        return datetime.fromisoformat("2000-01-01T00:00:00" + text).tzinfo
    except ValueError:
        raise AnonymousBankError(f"UTC offset {text!r} is invalid; write it as +03:00, -05:00 or Z") from None


def read_calls(lines: Iterable[str], utc_offset: str = "+03:00") -> tuple[list[dict], ReadStats]:
    """Turn Anonymous Bank records into canonical call events, sorted in event-time order.

    Returns the events as ``call-events`` JSON objects and what was found on the way. Raises
    :class:`AnonymousBankError` on a file that is not in this format, naming the line.
    """
    zone = parse_offset(utc_offset)
    reader = csv.DictReader(lines)
    missing = [column for column in REQUIRED_COLUMNS if column not in (reader.fieldnames or ())]
    if missing:
        raise AnonymousBankError(
            f"not an Anonymous Bank record file: columns {', '.join(missing)} are missing from the header "
            f"{reader.fieldnames!r}"
        )

    stats = ReadStats()
    services: dict[str, list[tuple[datetime, datetime, str]]] = defaultdict(list)
    for row in reader:
        stats.rows += 1
        line = reader.line_num
        if any(row.get(column) is None for column in REQUIRED_COLUMNS):
            raise AnonymousBankError(
                f"line {line}: the record has fewer fields than the header's {len(reader.fieldnames)}; "
                "check that the line is complete"
            )
        outcome = row["outcome"].strip()
        server = row["server"].strip()
        if outcome != "AGENT":
            stats.skipped[f"outcome {outcome}"] += 1
            continue
        if not server or server == "NO_SERVER":
            stats.skipped["served but no agent named"] += 1
            continue
        stats.served_calls += 1
        stats.agents.add(server)
        try:
            day = parse_date(row["date"])
            start_s = parse_clock_s(row["ser_start"])
            end_s = parse_clock_s(row["ser_exit"])
        except AnonymousBankError as exc:
            raise AnonymousBankError(f"line {line}: {exc}") from None
        if end_s == start_s:
            stats.zero_length_calls += 1
            continue
        midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
        start = midnight + timedelta(seconds=start_s)
        end = midnight + timedelta(seconds=end_s if end_s > start_s else end_s + 86_400)
        call_id = f"{day.strftime('%y%m%d')}-{row['vru+line'].strip()}-{row['call_id'].strip()}"
        services[server].append((start, end, call_id))

    events: list[dict] = []
    for agent_id, calls in services.items():
        calls.sort()
        for index, (start, end, call_id) in enumerate(calls):
            if index + 1 < len(calls) and calls[index + 1][0] < end:
                end = calls[index + 1][0]
                stats.overlaps_cut += 1
            if end <= start:
                stats.zero_length_calls += 1
                continue
            events.append(_event("call_started", agent_id, call_id, start))
            events.append(_event("call_ended", agent_id, call_id, end))
    events.sort(key=lambda event: (event["ts"], TYPE_RANK[event["type"]], event["event_id"]))
    return events, stats


def _event(event_type: str, agent_id: str, call_id: str, moment: datetime) -> dict:
    suffix = "start" if event_type == "call_started" else "end"
    return {
        "event_id": f"ab-{call_id}-{suffix}",
        "type": event_type,
        "agent_id": agent_id,
        "ts": format_ts(moment.timestamp()),
        "call_id": call_id,
        "source": SOURCE,
    }
