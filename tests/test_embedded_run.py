"""``agentload run`` on the embedded runtime, in a real process: break transitions, the floor
summary, a clean exit at the end of --duration and on SIGINT."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RUN = [
    sys.executable,
    "-m",
    "streams.cli",
    "run",
    "--speed",
    "600",
    "--seed",
    "7",
    "--start",
    "2026-03-02T08:00:00Z",
]
TRANSITION_LINE = re.compile(
    r"^2026-03-02T\d\d:\d\d:\d\dZ  agent-\d{3}\s+"
    r"(suggested|deferred|accepted|declined|expired|started|completed|cancelled)\s+(green|amber|red)\s+load\s+\d+\.\d"
)
TEAM_LINE = re.compile(r"^  (billing|collections|retention|support)\s+12 agents  green\s+\d+  amber\s+\d+  red\s+\d+  ")


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


def floor_summaries(lines: list[str]) -> list[list[str]]:
    """Return each floor summary block: its header line and the team lines after it."""
    blocks = []
    for line in lines:
        if line.startswith("-- floor at 2026-03-02T"):
            blocks.append([line])
        elif blocks and line.startswith("  "):
            blocks[-1].append(line)
    return blocks


def check_output(lines: list[str]) -> None:
    # The floor view's addresses come first; everything after them is transitions and summaries.
    assert lines[0].startswith("floor view: http://127.0.0.1:")
    assert lines[2].startswith("agent view of agent-001: http://127.0.0.1:")
    lines = lines[4:]
    transitions = [line for line in lines if TRANSITION_LINE.match(line)]
    assert any(" suggested " in line for line in transitions)
    assert all(TRANSITION_LINE.match(line) or line.startswith("-- floor") or TEAM_LINE.match(line) for line in lines)
    final = floor_summaries(lines)[-1]
    assert lines[-len(final):] == final
    assert [TEAM_LINE.match(line).group(1) for line in final[1:]] == ["billing", "collections", "retention", "support"]


def test_run_for_duration_prints_breaks_and_summary():
    result = subprocess.run(
        RUN + ["--duration", "3"], cwd=REPO_ROOT, env=environment(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    check_output(result.stdout.splitlines())
    assert "started: 48 simulated agents in 4 teams, seed 7, 600x speed" in result.stderr
    assert "stopped after" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_stops_cleanly_on_sigint():
    process = subprocess.Popen(
        RUN, cwd=REPO_ROOT, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lines: list[str] = []

    def read_stdout() -> None:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=read_stdout, daemon=True)
    reader.start()
    try:
        # Wait for the first transition, so the signal handler is surely installed.
        deadline = time.monotonic() + 30
        while not any(" suggested " in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any(" suggested " in line for line in lines), "no break offer within 30 s"

        process.send_signal(signal.SIGINT)
        returncode = process.wait(timeout=30)
        reader.join(timeout=10)
        stderr = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert returncode == 0, stderr
    check_output(lines)
    assert "stopped after" in stderr
    assert "KeyboardInterrupt" not in stderr
