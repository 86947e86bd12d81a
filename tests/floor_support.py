"""Helpers for the floor view tests: an in-process floor, and ``agentload run`` as a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from alerts.actions import engine_sink
from alerts.floor import FloorView
from alerts.policy import Transition
from streams.config import load_config
from streams.embedded import EmbeddedRuntime
from streams.engine import Engine
from streams.events import parse_ts
from streams.simulator import FloorSimulator, SimulatorSettings

REPO_ROOT = Path(__file__).resolve().parent.parent
TOKEN = "floor-test-token-0123456789"
START = "2026-03-02T08:00:00Z"
START_TS = parse_ts(START)
TICK_S = 5.0


class Floor:
    """An embedded runtime with its floor view, stepped by hand in event time."""

    def __init__(self, agents: int = 24, answer_offers: bool = False):
        config = load_config()
        self.engine = Engine(config)
        settings = SimulatorSettings(agents=agents, team_size=12, seed=7, answer_offers=answer_offers)
        self.runtime = EmbeddedRuntime(self.engine, FloorSimulator(settings, START_TS), START_TS)
        self.view = FloorView(TOKEN, clock=lambda: self.runtime.now, sink=engine_sink(self.engine))
        self.transitions: list[Transition] = []
        self.runtime.on_snapshot.append(self.view.state.on_snapshot)
        self.runtime.on_transition.append(self.view.state.on_transition)
        self.runtime.on_transition.append(self.transitions.append)
        self.lateness_s = config.runtime.lateness_s

    def step(self, seconds: float) -> None:
        """Advance event time by ``seconds`` in ticks, as the runtime's loop does."""
        end = self.runtime.now + seconds
        while self.runtime.now < end:
            self.runtime.step(min(end, self.runtime.now + TICK_S))

    def step_until_open_break(self, status: str = "suggested", limit_s: float = 7200.0) -> dict:
        """Step until some break is open in ``status``; return its floor-view record."""
        deadline = self.runtime.now + limit_s
        while self.runtime.now < deadline:
            for record in self.view.state.open_breaks.values():
                if record["type"] == status:
                    return record
            self.step(TICK_S)
        raise AssertionError(f"no {status} break within {limit_s:g} s of floor time")

    def apply_actions(self) -> None:
        """Step past the lateness bound, so that actions sent at the current time are applied."""
        self.step(self.lateness_s + TICK_S)

    def transitions_of(self, break_id: str) -> list[tuple[str, str]]:
        return [(tr.type, tr.actor) for tr in self.transitions if tr.break_id == break_id]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_agentload(port: int, *extra: str, config: Path | None = None) -> subprocess.Popen:
    """Start ``agentload run`` on 127.0.0.1:``port`` with the test token; wait until it is ready."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), AGENTLOAD_TOKEN=TOKEN)
    command = [sys.executable, "-m", "streams.cli"]
    if config is not None:
        command += ["--config", str(config)]
    command += ["run", "--http-port", str(port), "--summary-every", "0", "--seed", "7", "--start", START, *extra]
    # A file, not a pipe, because the tests do not read the transitions it prints and a full pipe
    # would stall it. Append mode keeps its writes at the end while the test seeks to read.
    output = tempfile.TemporaryFile("a+")
    process = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=output, stderr=subprocess.STDOUT, text=True)
    process.output = output
    deadline = time.monotonic() + 20.0
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output.seek(0)
            raise AssertionError(f"agentload run exited with {process.returncode}: {output.read()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1.0):
                return process
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    process.kill()
    raise AssertionError(f"agentload run did not get ready on port {port} within 20 s")


def stop_agentload(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10.0)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    process.output.close()


def output_of(process: subprocess.Popen) -> str:
    """Return what the process has printed so far."""
    process.output.flush()
    process.output.seek(0)
    return process.output.read()
