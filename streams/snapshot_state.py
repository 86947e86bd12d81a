"""Serialization of an engine's state, so that a worker can store it and another can restore it.

The Faust runtime keeps one :class:`TrackedEngine` per input partition and stores its state in a
changelog-backed table, one entry per agent, open break and team, plus a few entries of engine
bookkeeping (clock, timers, dedupe ids, ended breaks). Every entry is compact JSON, and
:func:`restore_engine` turns a set of entries back into an engine that continues exactly like the
original once it has read its input again from the offsets the clock names.

The ordering buffer is not stored, because it contains up to ``lateness_s`` of input and would
make every write as large as that input. Instead the clock records, per input topic, the offset of
the oldest message with an event still buffered, and the restored engine reads from there. An
event of a message below the stored next offset goes back into the buffer if it was buffered when
the state was written: its time is past ``applied_until`` and it is the copy the dedupe ids
record. Any other event of such a message was applied or rejected before, so it is dropped. New
messages wait until every topic is read up to its stored next offset, so the buffer is complete
again before anything is released.

Entry keys are ``kind/id`` (``agent/AVI``, ``break/brk-…``, ``team/default``, ``clock``,
``timers``, ``ended``, ``team_audio``, ``seen/<chunk>``); the runtime adds its own prefix. Dedupe
ids are stored in chunks of :data:`SEEN_CHUNK` ids in arrival order, so that a write rewrites only
the last chunk and the engine drops them in the same order after a restore.

Floats go through JSON as Python's shortest round-trip repr, so restored numbers are bit-exact;
``-inf`` (an engine that has seen no event yet, a used hostile streak) is written as
``-Infinity``, which Python's json module reads back.
"""

from __future__ import annotations

import heapq
import json
from collections import deque

from alerts.policy import Break, TeamState
from features.baseline import AudioBaseline
from streams.config import Config
from streams.engine import Engine, Origin
from streams.events import TYPE_RANK, Event
from streams.state import AgentState, CallState

AGENT = "agent/"
BREAK = "break/"
TEAM = "team/"
SEEN = "seen/"
CLOCK = "clock"
TIMERS = "timers"
ENDED = "ended"
TEAM_AUDIO = "team_audio"

# Dedupe ids per stored chunk.
SEEN_CHUNK = 256

_CALL_FIELDS = ("call_id", "started_at", "hold_started_at", "sentiment_sum", "sentiment_count", "flags", "hostile")
# Every AgentState slot but the ones stored specially: params (from the config), raw (a list),
# call (nested), hostile_times and pending_trigger (tuples), audio.
_AGENT_FIELDS = tuple(
    name
    for name in AgentState.__slots__
    if name not in ("params", "raw", "call", "hostile_times", "pending_trigger", "audio")
)
_BREAK_FIELDS = Break.__slots__


def _dumps(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def agent_to_dict(agent: AgentState) -> dict:
    """Return everything stored about ``agent`` as a JSON-ready dict."""
    document = {name: getattr(agent, name) for name in _AGENT_FIELDS}
    document["audio"] = agent.audio.to_list() if agent.audio is not None else None
    document["raw"] = agent.raw
    document["hostile_times"] = [list(item) for item in agent.hostile_times]
    document["pending_trigger"] = list(agent.pending_trigger) if agent.pending_trigger is not None else None
    call = agent.call
    document["call"] = {name: getattr(call, name) for name in _CALL_FIELDS} if call is not None else None
    return document


def agent_from_dict(document: dict, config: Config) -> AgentState:
    """Rebuild an agent from :func:`agent_to_dict` output; its parameters come from ``config``."""
    agent = AgentState(document["agent_id"], document["team_id"], config.params(document["team_id"]), document["t"])
    for name in _AGENT_FIELDS:
        setattr(agent, name, document[name])
    agent.raw = list(document["raw"])
    agent.hostile_times = tuple((item[0], item[1]) for item in document["hostile_times"])
    pending = document["pending_trigger"]
    agent.pending_trigger = (pending[0], pending[1]) if pending is not None else None
    call_document = document["call"]
    if call_document is not None:
        call = CallState(call_document["call_id"], call_document["started_at"])
        for name in _CALL_FIELDS:
            setattr(call, name, call_document[name])
        agent.call = call
    audio = document.get("audio")
    agent.audio = AudioBaseline.from_list(audio) if audio is not None else None
    return agent


def break_to_dict(brk: Break) -> dict:
    return {name: getattr(brk, name) for name in _BREAK_FIELDS}


def break_from_dict(document: dict) -> Break:
    brk = Break(document["break_id"], document["agent_id"], document["team_id"], document["trigger"], document["created_at"])
    for name in _BREAK_FIELDS:
        setattr(brk, name, document[name])
    return brk


def team_to_dict(team: TeamState) -> dict:
    return {"team_id": team.team_id, "logged_in": team.logged_in, "occupying": team.occupying, "deferred": list(team.deferred)}


def team_from_dict(document: dict) -> TeamState:
    team = TeamState(document["team_id"])
    team.logged_in = document["logged_in"]
    team.occupying = document["occupying"]
    team.deferred = deque(document["deferred"])
    return team


def state_entries(engine: Engine, agent_ids=None) -> dict[str, bytes]:
    """Return the entries of agents (all, or those in ``agent_ids``), open breaks and teams."""
    agents = engine.agents
    ids = agents.keys() if agent_ids is None else [agent_id for agent_id in agent_ids if agent_id in agents]
    entries = {AGENT + agent_id: _dumps(agent_to_dict(agents[agent_id])) for agent_id in ids}
    for break_id, brk in engine.policy.breaks.items():
        entries[BREAK + break_id] = _dumps(break_to_dict(brk))
    for team_id, team in engine.teams.items():
        entries[TEAM + team_id] = _dumps(team_to_dict(team))
    return entries




class TrackedEngine(Engine):
    """An engine fed from partitioned logs that notes what changed, so it can be stored now and then.

    ``touched_agents`` collects the agents that events or timers changed since the runtime last
    cleared it. ``seen_appended`` counts every dedupe id ever added, so that the stored chunks keep
    the ids in arrival order across restarts. :meth:`read` takes input as messages of named topics
    with their offsets; after a restore it puts the buffered events back first (see the module
    documentation).
    """

    def __init__(self, config: Config):
        super().__init__(config)
        self.touched_agents: set[str] = set()
        self.seen_appended = 0
        # Input topic -> offset of the next message not yet in this state.
        self.input_offsets: dict[str, int] = {}
        # Set on restore: input topic -> offset to read from (see reread_offsets()).
        self.resume_offsets: dict[str, int] = {}
        # Input topic -> stored next offset, for topics not yet read up to it since the restore.
        self.rereading: dict[str, int] = {}
        # Set on restore: ids of the events buffered at exactly applied_until when it was stored.
        self._boundary_ids: set[str] = set()
        self._rebuffered: set[str] = set()
        # Messages that arrived while other topics were still read again: (events, origin).
        self._waiting_messages: list[tuple[list[Event], Origin | None]] = []
        # Origin topic name -> the topic name given to read(), to store buffer offsets by the latter.
        self._topic_of_origin: dict[str, str] = {}

    def read(self, topic: str, offset: int, events: list[Event], origin: Origin | None = None) -> bool:
        """Take message ``offset`` of input ``topic`` with its decoded ``events``; return whether it is new.

        A message below the topic's next offset is already in this state: it is dropped, or while
        the engine reads again after a restore, its buffered events go back into the buffer. The
        caller rejects the invalid parts of a message only when it is new.
        """
        if origin is not None:
            self._topic_of_origin[origin.topic] = topic
        is_new = offset >= self.input_offsets.get(topic, 0)
        if is_new:
            self.input_offsets[topic] = offset + 1
        rereading = self.rereading
        if not rereading:
            if is_new:
                for event in events:
                    self.submit(event, origin)
            return is_new
        if offset + 1 >= rereading.get(topic, offset + 2):
            del rereading[topic]
        if is_new:
            self._waiting_messages.append((events, origin))
        else:
            for event in events:
                self._rebuffer(event, origin)
        if not rereading:
            self.end_reread()
        return is_new

    def end_reread(self) -> None:
        """Finish reading again after a restore: apply the messages that waited for it.

        :meth:`read` calls it once every topic is read up to its stored offset. A runtime calls it
        itself when the rest of that input will not arrive because retention deleted it.
        """
        self.rereading.clear()
        self._boundary_ids.clear()
        self._rebuffered.clear()
        waiting, self._waiting_messages = self._waiting_messages, []
        for events, origin in waiting:
            for event in events:
                self.submit(event, origin)

    def _rebuffer(self, event: Event, origin: Origin | None) -> None:
        ts = event.ts
        event_id = event.event_id
        if ts < self.applied_until or (ts == self.applied_until and event_id not in self._boundary_ids):
            return  # applied, or applied late, before the state was stored
        if self._seen.get(event_id) != ts or event_id in self._rebuffered:
            return  # a duplicate of the copy that was buffered
        self._rebuffered.add(event_id)
        heapq.heappush(self._buffer, (ts, TYPE_RANK[event.type], event_id, event, origin))

    @property
    def buffered(self) -> int:
        """Return the number of events in the ordering buffer."""
        return len(self._buffer)

    def reread_offsets(self) -> dict[str, int]:
        """Return, per input topic, the offset to read from after a restore of the current state."""
        offsets = dict(self.input_offsets)
        topic_of = self._topic_of_origin
        for _, _, _, _, origin in self._buffer:
            if origin is None or origin.offset is None:
                continue
            topic = topic_of.get(origin.topic, origin.topic)
            if origin.offset < offsets.get(topic, origin.offset + 1):
                offsets[topic] = origin.offset
        return offsets

    def submit(self, event: Event, origin: Origin | None = None) -> None:
        if event.event_id not in self._seen:
            self.seen_appended += 1
        super().submit(event, origin)

    def _apply(self, event: Event, origin: Origin | None, now: float, outcome: str) -> None:
        # Handlers change an agent without always advancing it (a sentiment score that adds no
        # load still counts into the call), so every applied event marks its agent.
        self.touched_agents.add(event.agent_id)
        super()._apply(event, origin, now, outcome)

    def _advance(self, agent: AgentState, now: float) -> None:
        self.touched_agents.add(agent.agent_id)
        super()._advance(agent, now)


class EngineStore:
    """The stored form of one engine: which entries changed since the last write.

    ``changes()`` returns the entries to write (bytes) or delete (None) since the previous call,
    comparing with what was written before, so an unchanged entry is never written again. Agents
    are serialized only when the engine marked them touched, or named in ``also_agents``.

    Usage::

        store = EngineStore(engine)
        ...  # submit events, advance time
        for key, value in store.changes(also_agents=transition_agents).items():
            table[prefix + key] = value  # or delete when value is None
    """

    def __init__(self, engine: TrackedEngine, written: dict[str, bytes] | None = None):
        self.engine = engine
        self._written: dict[str, bytes] = dict(written or {})
        # Dedupe chunks last written with all their ids; only these can be reused as they are.
        self._complete_chunks: set[str] = set()

    def written(self, key: str) -> bytes:
        """Return the last value written for ``key``."""
        return self._written[key]

    def changes(self, also_agents=()) -> dict[str, bytes | None]:
        engine = self.engine
        agent_ids = engine.touched_agents
        agent_ids.update(also_agents)
        entries = state_entries(engine, agent_ids)
        agent_ids.clear()
        entries.update(self._bookkeeping())

        written = self._written
        changed: dict[str, bytes | None] = {}
        for key, value in entries.items():
            if written.get(key) != value:
                written[key] = value
                changed[key] = value
        for key in [key for key in written if key not in entries and not key.startswith(AGENT)]:
            # Ended breaks, teams left empty and fully forgotten dedupe chunks.
            del written[key]
            changed[key] = None
        return changed

    def _bookkeeping(self) -> dict[str, bytes]:
        engine = self.engine
        policy = engine.policy
        if engine.rereading:
            raise RuntimeError("the engine is still reading its input again after a restore; store it once that is done")
        forgotten = engine.seen_appended - len(engine._seen_order)
        applied_until = engine.applied_until
        entries = {
            CLOCK: _dumps(
                {
                    "max_ts": engine.max_ts,
                    "applied_until": engine.applied_until,
                    "timer_seq": engine._timer_seq,
                    # The event time of the next clean-up of old dedupe ids and ended breaks. A
                    # restored engine must clean up on the same schedule to drop the same repeats.
                    "next_forget_at": engine._next_forget_at,
                    "seen_appended": engine.seen_appended,
                    "seen_forgotten": forgotten,
                    "input_offsets": engine.input_offsets,
                    "reread_offsets": engine.reread_offsets(),
                    "boundary_ids": [item[2] for item in engine._buffer if item[0] == applied_until],
                }
            ),
            TIMERS: _dumps([list(timer) for timer in engine._timers]),
            ENDED: _dumps([[ended_at, break_id, policy.ended.get(break_id)] for ended_at, break_id in policy._ended_order]),
            TEAM_AUDIO: _dumps({team_id: baseline.to_list() for team_id, baseline in engine._team_audio.items()}),
        }
        # Chunk c holds the ids with arrival numbers c*SEEN_CHUNK to (c+1)*SEEN_CHUNK - 1; only
        # chunks with a live id are kept, and only the ones whose bytes changed get written.
        order = engine._seen_order
        seen = engine._seen
        first_chunk = forgotten // SEEN_CHUNK
        last_chunk = (engine.seen_appended - 1) // SEEN_CHUNK if engine.seen_appended else -1
        written = self._written
        complete = self._complete_chunks
        for chunk in range(first_chunk, last_chunk + 1):
            key = SEEN + str(chunk)
            start = chunk * SEEN_CHUNK
            if chunk != first_chunk and key in complete:
                # Written when it was full, and no id of it is forgotten yet: unchanged.
                entries[key] = written[key]
                continue
            first = max(start, forgotten)
            high = min(start + SEEN_CHUNK, engine.seen_appended)
            items = [[seen[order[index - forgotten]], order[index - forgotten]] for index in range(first, high)]
            entries[key] = _dumps([first, items])
            if first == start and high == start + SEEN_CHUNK:
                complete.add(key)
        complete.intersection_update(entries)
        return entries


def engine_entries(engine: TrackedEngine) -> dict[str, bytes]:
    """Return every entry of ``engine``: its whole state, ready to store."""
    return {key: value for key, value in EngineStore(engine).changes(engine.agents.keys()).items() if value is not None}


def restore_engine(config: Config, entries: dict[str, bytes]) -> TrackedEngine:
    """Build an engine from entries written through :class:`EngineStore` or :func:`engine_entries`.

    Raises ValueError naming the entry when one is not valid JSON of the expected shape.
    """
    engine = TrackedEngine(config)
    policy = engine.policy
    chunks: list[tuple[int, list]] = []
    forgotten = 0
    for key, value in entries.items():
        try:
            document = json.loads(value)
            if key.startswith(AGENT):
                agent = agent_from_dict(document, config)
                engine.agents[agent.agent_id] = agent
            elif key.startswith(BREAK):
                brk = break_from_dict(document)
                policy.breaks[brk.break_id] = brk
            elif key.startswith(TEAM):
                team = team_from_dict(document)
                engine.teams[team.team_id] = team
            elif key.startswith(SEEN):
                chunks.append((document[0], document[1]))
            elif key == CLOCK:
                engine.max_ts = document["max_ts"]
                engine.applied_until = document["applied_until"]
                engine._timer_seq = document["timer_seq"]
                engine._next_forget_at = document["next_forget_at"]
                engine.seen_appended = document["seen_appended"]
                forgotten = document["seen_forgotten"]
                engine.input_offsets = dict(document["input_offsets"])
                engine.resume_offsets = dict(document["reread_offsets"])
                engine.rereading = {
                    topic: next_offset
                    for topic, next_offset in engine.input_offsets.items()
                    if engine.resume_offsets.get(topic, next_offset) < next_offset
                }
                engine._boundary_ids = set(document["boundary_ids"])
            elif key == TIMERS:
                engine._timers = [tuple(timer) for timer in document]
            elif key == TEAM_AUDIO:
                engine._team_audio = {team_id: AudioBaseline.from_list(values) for team_id, values in document.items()}
            elif key == ENDED:
                for ended_at, break_id, status in document:
                    policy._ended_order.append((ended_at, break_id))
                    if status is not None:
                        policy.ended[break_id] = status
            else:
                raise ValueError("unknown entry kind")
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise ValueError(
                f"stored engine entry {key!r} cannot be restored ({exc}); it was not written by this version of agentload"
            ) from None

    # A chunk written before the engine forgot more ids may still hold some of them: keep only
    # the ids whose arrival number is past the forgotten count stored with the clock.
    chunks.sort(key=lambda chunk: chunk[0])
    order: deque = deque()
    seen: dict[str, float] = {}
    for first, items in chunks:
        skip = max(0, forgotten - first)
        for ts, event_id in items[skip:]:
            order.append(event_id)
            seen[event_id] = ts
    engine._seen_order = order
    engine._seen = seen
    return engine
