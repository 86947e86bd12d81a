"""Replay of the real Anonymous Bank call records (Technion, August 1999).

The expected figures are not copied from the engine. They are computed here from the CSV with
the csv module and with a plain re-implementation of the load arithmetic for one agent at a
time: calls per agent, and when and why each agent is first offered a recovery break.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from streams import cli
from streams.config import load_config

ISRAEL_SUMMER = timezone(timedelta(hours=3))


def bank_files(shared_data: Path) -> list[Path]:
    files = sorted((shared_data / "anonymous-bank-calls").glob("*.csv"))
    assert files, "no Anonymous Bank CSV files in the data folder"
    return files


def run_replay(path: Path, *extra: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["replay", "--format", "anonymous-bank", *extra, str(path)])
    return code, out.getvalue(), err.getvalue()


@functools.lru_cache(maxsize=4)
def cached_replay(path: Path, *extra: str) -> tuple[int, str, str]:
    return run_replay(path, *extra)


# An independent reading of the records ---------------------------------------------------------


def served_rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [
            row
            for row in csv.DictReader(handle)
            if row["outcome"].strip() == "AGENT" and row["server"].strip() not in ("", "NO_SERVER")
        ]


def clock_s(text: str) -> int:
    hours, minutes, seconds = (int(part) for part in text.split(":"))
    return hours * 3600 + minutes * 60 + seconds


def record_day(text: str) -> date:
    # The monthly files write 990801; copies that went through a spreadsheet write 2010-08-01.
    if len(text) == 6:
        return date(1999, int(text[2:4]), int(text[4:6]))
    return date.fromisoformat(text).replace(year=1999)


def agent_calls(rows: list[dict], agent: str) -> list[tuple[float, float]]:
    """(start, end) in Unix seconds of the agent's services that last a second or more, in order.

    Overlapping services are cut at the next one's start, because an agent handles one call at a time.
    """
    services = []
    for row in rows:
        if row["server"].strip() != agent:
            continue
        day = record_day(row["date"].strip())
        start_s, end_s = clock_s(row["ser_start"]), clock_s(row["ser_exit"])
        if start_s == end_s:
            continue
        if end_s < start_s:
            end_s += 86_400
        midnight = datetime(day.year, day.month, day.day, tzinfo=ISRAEL_SUMMER).timestamp()
        services.append((midnight + start_s, midnight + end_s))
    services.sort()
    calls = []
    for index, (start, end) in enumerate(services):
        if index + 1 < len(services):
            end = min(end, services[index + 1][0])
        if end > start:
            calls.append((start, end))
    return calls


@dataclass
class FirstOffer:
    time: float | None
    trigger: str | None
    peak_load: float


def first_offer(calls: list[tuple[float, float]]) -> FirstOffer:
    """Follow one agent's load through their calls with the default settings, by hand.

    Between calls the agent is available: the first 60 s drain at the on-call half-life (2 h),
    then at 15 min. On a call load drains at the 2 h half-life while time_since_recovery fills
    at 6 points an hour, so it tends to 6 / (ln 2 / 7200 s) / 3600 s = 17.3 points and can never
    cross 40 upwards there. A call that starts within 60 s of the last one's end adds 0.5 points.
    Its end adds 0.6 points times the handle time over the usual one, at most 4 times. The usual
    one is the agent's exponentially weighted mean of log handle time, blended with 300 s until
    20 calls.
    Amber at 50, red at 70, each left 10 points below. A break is offered on entering red, or
    30 min after leaving green while still not green; either waits for the end of a call, and a
    gap of 30 min between calls is a recovery that restarts the 30 min.
    """
    params = load_config().params("default")
    k_call = math.log(2) / 7200.0
    k_available = math.log(2) / 900.0
    fill_target = (6.0 / 3600.0) / k_call

    load = 0.0
    peak = 0.0
    level = "green"
    elevated_since = None
    log_mean = 0.0
    handled = 0
    previous_end = None
    available_since = calls[0][0]

    def rise(points: float, now: float) -> bool:
        """Add points; return True on entering red."""
        nonlocal load, peak, level, elevated_since
        load += points
        peak = max(peak, load)
        if level == "green" and load >= 50.0:
            level, elevated_since = "amber", now
        if level == "amber" and load >= 70.0:
            level = "red"
            return True
        return False

    def settle() -> None:
        """Apply level exits after a stretch in which load only fell."""
        nonlocal level, elevated_since
        if level == "red" and load <= 60.0:
            level = "amber"
        if level == "amber" and load <= 40.0:
            level, elevated_since = "green", None

    def available_load(since: float, now: float) -> float:
        gap = now - since
        slow = min(gap, 60.0)
        return load * math.exp(-k_call * slow - k_available * (gap - slow))

    for start, end in calls:
        # Between calls: available from the last call's end. A timer due at the next call's
        # start fires before that call begins.
        if elevated_since is not None:
            deadline = elevated_since + 1800.0
            if available_since <= deadline <= start and available_load(available_since, deadline) > 40.0:
                return FirstOffer(deadline, "amber_held", peak)
        load = available_load(available_since, start)
        settle()
        if start - available_since >= 1800.0 and elevated_since is not None:
            elevated_since = start
        if previous_end is not None and start - previous_end < 60.0:
            if rise(0.5, start):
                pending = "red"
            else:
                pending = None
        else:
            pending = None

        # On the call.
        if pending is None and elevated_since is not None and elevated_since + 1800.0 <= end:
            deadline = elevated_since + 1800.0
            at_deadline = fill_target + (load - fill_target) * math.exp(-k_call * (deadline - start))
            if at_deadline > 40.0:
                pending = "amber_held"
        load = fill_target + (load - fill_target) * math.exp(-k_call * (end - start))
        peak = max(peak, load)
        settle()

        # The call's end.
        handle_s = end - start
        weight = handled / params.min_calls if handled < params.min_calls else 1.0
        usual_s = math.exp(weight * log_mean + (1.0 - weight) * math.log(300.0))
        if rise(0.6 * min(handle_s / usual_s, 4.0), end):
            return FirstOffer(end, "red", peak)
        if pending is not None:
            return FirstOffer(end, pending, peak)
        if handled == 0:
            log_mean = math.log(handle_s)
        else:
            # Early calls weigh as in a plain average, later ones by the 0.05 smoothing weight.
            step = max(params.ewma_alpha, 1.0 / (handled + 1))
            log_mean = (1.0 - step) * log_mean + step * math.log(handle_s)
        handled += 1
        previous_end = end
        available_since = end

    if elevated_since is not None:
        deadline = elevated_since + 1800.0
        if available_load(available_since, deadline) > 40.0:
            return FirstOffer(deadline, "amber_held", peak)
    return FirstOffer(None, None, peak)


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# Tests ------------------------------------------------------------------------------------------


def test_replay_counts_served_calls_and_agents(shared_data):
    for path in bank_files(shared_data):
        rows = served_rows(path)
        agents = {row["server"].strip() for row in rows}
        code, out, err = cached_replay(path)
        assert code == 0
        assert f"{len(rows)} served calls by {len(agents)} agents" in err
        summary_agents = [line.split()[0] for line in out.split("\n\n")[-1].splitlines()[1:]]
        assert summary_agents == sorted(agents)


def test_replay_served_calls_of_first_file(shared_data):
    path = bank_files(shared_data)[0]
    rows = served_rows(path)
    assert len(rows) == 14415
    assert len({row["server"].strip() for row in rows}) == 22


def summary_row(out: str, agent: str) -> list[str]:
    rows = [line.split() for line in out.split("\n\n")[-1].splitlines()[1:]]
    return next(row for row in rows if row[0] == agent)


def first_suggestion(cloudevents: list[dict], agent: str) -> dict | None:
    return next(
        (event for event in cloudevents if event["subject"] == agent and event["type"] == "io.agentload.break.suggested"),
        None,
    )


@pytest.mark.parametrize(
    ("agent", "served", "handled", "offered_at", "trigger"),
    [
        ("AVI", 1670, 1637, "1999-08-01T07:33:51.000Z", "amber_held"),
        ("SHARON", 1435, 1432, "1999-08-01T13:05:49.000Z", "amber_held"),
        ("DARMON", 194, 194, None, None),
        ("ELI", 211, 209, None, None),
    ],
)
def test_replay_first_offer_matches_hand_computation(shared_data, agent, served, handled, offered_at, trigger):
    path = bank_files(shared_data)[0]
    rows = served_rows(path)
    calls = agent_calls(rows, agent)
    expected = first_offer(calls)

    assert sum(row["server"].strip() == agent for row in rows) == served
    # Services shorter than a second, and those cut to nothing by an overlap, are no calls.
    assert len(calls) == handled
    code, out, _ = cached_replay(path)
    assert code == 0
    assert int(summary_row(out, agent)[2]) == len(calls)

    # The hand computation gives these, and the engine must agree with it.
    assert (iso(expected.time) if expected.time is not None else None) == offered_at
    assert expected.trigger == trigger

    _, json_out, _ = cached_replay(path, "--json")
    offer = first_suggestion([json.loads(line) for line in json_out.splitlines()], agent)
    if offered_at is None:
        assert offer is None
        assert summary_row(out, agent)[6] == "0"
        assert float(summary_row(out, agent)[3]) == round(expected.peak_load, 1)
    else:
        assert offer["time"] == offered_at
        assert offer["data"]["trigger"] == trigger


def test_replay_first_offer_of_every_agent_matches_hand_computation(shared_data):
    path = bank_files(shared_data)[0]
    rows = served_rows(path)
    _, json_out, _ = cached_replay(path, "--json")
    cloudevents = [json.loads(line) for line in json_out.splitlines()]
    offered = 0
    for agent in sorted({row["server"].strip() for row in rows}):
        expected = first_offer(agent_calls(rows, agent))
        offer = first_suggestion(cloudevents, agent)
        if expected.time is None:
            assert offer is None, agent
            continue
        offered += 1
        assert (offer["time"], offer["data"]["trigger"]) == (iso(expected.time), expected.trigger), agent
    assert offered == 10


def test_replay_twice_gives_identical_output(shared_data):
    path = bank_files(shared_data)[0]
    first = run_replay(path)
    second = run_replay(path)
    assert first[0] == second[0] == 0
    assert first[1].encode("utf-8") == second[1].encode("utf-8")
    assert first[1].count(" suggested ") > 0


def test_replay_json_gives_valid_cloudevents(shared_data):
    path = bank_files(shared_data)[0]
    code, out, _ = cached_replay(path, "--json")
    assert code == 0
    events = [json.loads(line) for line in out.splitlines()]
    assert len(events) > 0
    assert len({event["id"] for event in events}) == len(events)
    for event in events:
        assert event["specversion"] == "1.0"
        assert event["type"].startswith("io.agentload.break.")
        assert event["type"].removeprefix("io.agentload.break.") in (
            "suggested", "deferred", "accepted", "declined", "expired", "started", "completed", "cancelled",
        )
        assert event["source"] == "/agentload"
        assert event["subject"] == event["data"]["agent_id"]
        assert event["datacontenttype"] == "application/json"
        assert event["time"].endswith("Z")
        data = event["data"]
        assert 0 < len(data["reason_code"]) <= 24
        assert data["level"] in ("green", "amber", "red")
        shares = [reason["share"] for reason in data["reasons"]]
        assert math.fsum(shares) == pytest.approx(1.0, abs=1e-12)
        assert round(sum(shares), 9) == 1.0
        if event["type"].endswith(".suggested"):
            assert data["offer_expires_at"] is not None
            assert 120 <= data["recommended_break_s"] <= 900
            assert data["recommended_break_s"] % 60 == 0
