"""Console output: break transitions, the floor summary and the per-agent replay summary."""

from __future__ import annotations

from alerts.policy import TRIGGER_WORDS, Transition
from streams.engine import Engine
from streams.events import format_ts
from streams.state import AMBER, GREEN, LEVELS, RED

_TOP_REASONS = 3


def format_transition(transition: Transition) -> str:
    """Return one readable line for a break transition, with its level, load and top reasons."""
    reasons = ", ".join(
        f"{reason['factor']} {reason['share']:.0%}" for reason in transition.reasons[:_TOP_REASONS]
    )
    parts = [
        format_ts(transition.time)[:19] + "Z",
        f"{transition.agent_id:<12}",
        f"{transition.type:<9}",
        f"{transition.level:<5}",
        f"load {transition.load:5.1f}",
    ]
    if transition.type in ("suggested", "deferred"):
        parts.append(f"break {transition.recommended_break_s / 60:.0f} min")
        parts.append(f"({TRIGGER_WORDS[transition.trigger]})")
    if reasons:
        parts.append(f"reasons: {reasons}")
    if transition.note:
        parts.append(f"[{transition.note}]")
    return "  ".join(parts)


def format_floor_summary(engine: Engine, now: float) -> str:
    """Return a compact floor summary: agents by level and state, and open breaks, per team."""
    lines = [f"-- floor at {format_ts(now)[:19]}Z --"]
    open_by_team: dict[str, dict[str, int]] = {}
    for brk in engine.policy.breaks.values():
        counts = open_by_team.setdefault(brk.team_id, {})
        counts[brk.status] = counts.get(brk.status, 0) + 1

    by_team: dict[str, list] = {}
    for agent in engine.agents.values():
        if agent.state != "offline":
            by_team.setdefault(agent.team_id, []).append(agent)
    for team_id in sorted(by_team):
        agents = by_team[team_id]
        levels = [0, 0, 0]
        on_call = on_break = 0
        peak = None
        for agent in agents:
            levels[agent.level] += 1
            on_call += agent.state == "on_call"
            on_break += agent.state == "break"
            load = agent.load_at(max(now, agent.t))
            if peak is None or load > peak[0]:
                peak = (load, agent.agent_id)
        breaks = open_by_team.get(team_id, {})
        open_text = ", ".join(f"{count} {status}" for status, count in sorted(breaks.items())) or "none"
        lines.append(
            f"  {team_id:<12} {len(agents):>4} agents  green {levels[GREEN]:>3}  amber {levels[AMBER]:>3}  "
            f"red {levels[RED]:>3}  on call {on_call:>3}  on break {on_break:>3}  "
            f"highest {peak[1]} {peak[0]:.1f}  open breaks: {open_text}"
        )
    return "\n".join(lines)


def agent_summary_rows(engine: Engine) -> list[dict]:
    """Return per-agent replay figures: calls, peak load, minutes amber and red, breaks suggested."""
    rows = []
    for agent_id in sorted(engine.agents):
        agent = engine.agents[agent_id]
        amber_s, red_s = agent.amber_s, agent.red_s
        if agent.level == AMBER:
            amber_s += agent.t - agent.level_since
        elif agent.level == RED:
            red_s += agent.t - agent.level_since
        rows.append(
            {
                "agent_id": agent_id,
                "team_id": agent.team_id,
                "calls": agent.calls,
                "peak_load": round(agent.peak_load, 1),
                "amber_min": round(amber_s / 60.0, 1),
                "red_min": round(red_s / 60.0, 1),
                "breaks_suggested": agent.breaks_suggested,
                "level": LEVELS[agent.level],
            }
        )
    return rows


def format_agent_summary(rows: list[dict]) -> str:
    header = f"{'agent':<12} {'team':<10} {'calls':>6} {'peak load':>9} {'amber min':>9} {'red min':>8} {'breaks':>6}"
    lines = [header]
    for row in rows:
        lines.append(
            f"{row['agent_id']:<12} {row['team_id']:<10} {row['calls']:>6} {row['peak_load']:>9.1f} "
            f"{row['amber_min']:>9.1f} {row['red_min']:>8.1f} {row['breaks_suggested']:>6}"
        )
    return "\n".join(lines)
