"""The supervisor floor view and the agent view: pages, a JSON API and server-sent events.

Both views are routes on the process's one aiohttp app (see :func:`streams.web.create_app`).
Every page and API call needs a token (see :mod:`alerts.tokens`). The supervisor token opens the
floor view at ``/`` and its API under ``/api/``. An agent's own token opens ``/agent/{agent_id}``
and ``/api/agents/{agent_id}/...`` for that agent only. A token is sent as
``Authorization: Bearer``, or once as ``?token=`` on a page, which sets an HttpOnly,
SameSite=Strict cookie and redirects to the same page without the token in its address.

Browsers get updates as server-sent events. Changes are batched: every ``flush_interval_s`` the
view sends one ``update`` event with the rows that changed and the transitions made since the
last one. It is serialized once for all supervisors, so a floor of thousands of agents costs a few
messages a second. A browser that falls too far behind is sent the full state again.

Button presses become ``break-actions`` events (see :mod:`alerts.actions`) with the runtime's
current event time, handed to the sink. The engine applies them in event-time order, so an
action shows up as a transition on the event stream once the lateness bound has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from alerts.actions import (
    AGENT_ACTIONS,
    SUPERVISOR_ACTIONS,
    ActionRejected,
    BreakActionSink,
    ButtonAction,
    build_break_action,
    check_action,
)
from alerts.floor_state import FloorState
from alerts.tokens import agent_token, tokens_match
from streams.events import InvalidEventError

log = logging.getLogger("agentload.floor")

STATIC_DIR = Path(__file__).resolve().parent / "static"

SUPERVISOR_COOKIE = "agentload_token"
AGENT_COOKIE = "agentload_agent_token"

DEFAULT_FLUSH_INTERVAL_S = 0.5
KEEPALIVE_S = 15.0
# Updates queued for one browser before it is considered behind and sent the full state instead.
MAX_QUEUED_UPDATES = 20
MAX_NOTE_CHARS = 500

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class _Subscriber:
    """One open event stream: a browser of the floor view, or of one agent's view."""

    __slots__ = ("agent_id", "queue", "behind")

    def __init__(self, agent_id: str | None):
        self.agent_id = agent_id
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.behind = False


class FloorView:
    """The floor view's state, its event-stream subscribers, and the routes that serve them.

    ``clock`` returns the runtime's current event time (seconds since the Unix epoch); ``sink``
    delivers a validated break-actions document (see :func:`alerts.actions.engine_sink`).

    Usage::

        floor = FloorView(token, clock=lambda: runtime.now, sink=engine_sink(engine))
        runtime.on_snapshot.append(floor.state.on_snapshot)
        runtime.on_transition.append(floor.state.on_transition)
        floor.add_routes(app)
    """

    def __init__(
        self,
        token: str,
        clock: Callable[[], float],
        sink: BreakActionSink,
        flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
    ):
        self._token = token
        self.clock = clock
        self.sink = sink
        self.flush_interval_s = flush_interval_s
        self.state = FloorState()
        self._subscribers: set[_Subscriber] = set()
        self._rejected_requests = 0

    # Wiring -----------------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        """Add the pages, the API and the static files to ``app``, and the flush task to its life."""
        app.router.add_get("/", self._floor_page)
        app.router.add_get("/agent/{agent_id}", self._agent_page)
        app.router.add_get("/api/agents", self._api_agents)
        app.router.add_get("/api/breaks", self._api_breaks)
        app.router.add_get("/api/events", self._api_events)
        app.router.add_post("/api/breaks/{break_id}/actions", self._api_supervisor_action)
        app.router.add_get("/api/agents/{agent_id}", self._api_agent)
        app.router.add_get("/api/agents/{agent_id}/events", self._api_agent_events)
        app.router.add_post("/api/agents/{agent_id}/breaks", self._api_agent_request)
        app.router.add_post("/api/agents/{agent_id}/breaks/{break_id}/actions", self._api_agent_action)
        # Static files carry code and styles only, no floor data, so they need no token.
        app.router.add_static("/static/", STATIC_DIR, name="floor_static")
        app.cleanup_ctx.append(self._flush_context)
        app.on_shutdown.append(self._close_streams)

    async def _flush_context(self, app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(self._flush_loop())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval_s)
            self.flush()

    def flush(self) -> None:
        """Send every subscriber what changed since the last flush."""
        update = self.state.take_update(self.clock())
        if not self._subscribers:
            return
        floor_message: bytes | None = None
        by_agent: dict[str, dict] | None = None
        for subscriber in self._subscribers:
            if subscriber.behind:
                continue
            if subscriber.agent_id is None:
                if floor_message is None:
                    floor_message = _sse("update", update)
                message = floor_message
            else:
                if by_agent is None:
                    by_agent = _split_by_agent(update)
                agent_update = by_agent.get(subscriber.agent_id)
                if agent_update is None:
                    agent_update = {"seq": update["seq"], "ts": update["ts"], "agents": [], "transitions": []}
                message = _sse("update", agent_update)
            if subscriber.queue.qsize() >= MAX_QUEUED_UPDATES:
                self._mark_behind(subscriber)
                continue
            subscriber.queue.put_nowait(message)

    def _mark_behind(self, subscriber: _Subscriber) -> None:
        # Drop the stale updates; the stream sends the full state once it has caught up.
        while not subscriber.queue.empty():
            subscriber.queue.get_nowait()
        subscriber.behind = True
        subscriber.queue.put_nowait(b"")
        log.debug("an event-stream subscriber fell behind; sending it the full state")

    async def _close_streams(self, app: web.Application) -> None:
        for subscriber in self._subscribers:
            subscriber.queue.put_nowait(None)

    # Access -----------------------------------------------------------------------------------

    def _presented_token(self, request: web.Request, cookie: str) -> str | None:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value:
            return value.strip()
        return request.cookies.get(cookie)

    def _is_supervisor(self, request: web.Request) -> bool:
        return tokens_match(self._presented_token(request, SUPERVISOR_COOKIE), self._token)

    def _is_agent(self, request: web.Request, agent_id: str) -> bool:
        return tokens_match(self._presented_token(request, AGENT_COOKIE), agent_token(self._token, agent_id))

    def _count_rejected(self, request: web.Request) -> None:
        # The first rejection and every hundredth after it, so a client retrying with a stale
        # token cannot flood the log. The token itself is never logged.
        self._rejected_requests += 1
        if self._rejected_requests % 100 == 1:
            log.warning(
                "rejected %d requests with a missing or wrong token so far (latest: %s %s from %s)",
                self._rejected_requests,
                request.method,
                request.path,
                request.remote,
            )

    def _require_supervisor(self, request: web.Request) -> None:
        if not self._is_supervisor(request):
            self._count_rejected(request)
            raise _json_error(
                web.HTTPUnauthorized,
                "the supervisor token is missing or wrong; send it as 'Authorization: Bearer <token>', "
                "or open the floor view's address printed at start",
            )

    def _require_agent(self, request: web.Request, agent_id: str) -> None:
        if not self._is_agent(request, agent_id):
            self._count_rejected(request)
            raise _json_error(
                web.HTTPUnauthorized,
                f"this needs agent {agent_id}'s own token, sent as 'Authorization: Bearer <token>' or by opening "
                "the agent's link; ask the supervisor for the link (agentload agent-token AGENT_ID prints it)",
            )

    async def _page(self, request: web.Request, cookie: str, expected: str, page: str) -> web.StreamResponse:
        query_token = request.query.get("token")
        if query_token is not None:
            if not tokens_match(query_token, expected):
                self._count_rejected(request)
                return _login_page(web.HTTPUnauthorized.status_code, "The token in this address is not valid for this page.")
            # Take the token out of the address bar and the history, and keep it in a cookie.
            query = {key: value for key, value in request.query.items() if key != "token"}
            response = web.Response(status=303, headers={"Location": str(request.rel_url.with_query(query))})
            response.set_cookie(cookie, query_token, httponly=True, samesite="Strict", path="/")
            response.headers.update(_SECURITY_HEADERS)
            return response
        if not tokens_match(self._presented_token(request, cookie), expected):
            self._count_rejected(request)
            return _login_page(web.HTTPUnauthorized.status_code, "This page needs its access token.")
        response = web.FileResponse(STATIC_DIR / page, headers={"Content-Type": "text/html; charset=utf-8"})
        response.headers.update(_SECURITY_HEADERS)
        return response

    # Pages ------------------------------------------------------------------------------------

    async def _floor_page(self, request: web.Request) -> web.StreamResponse:
        return await self._page(request, SUPERVISOR_COOKIE, self._token, "floor.html")

    async def _agent_page(self, request: web.Request) -> web.StreamResponse:
        agent_id = request.match_info["agent_id"]
        return await self._page(request, AGENT_COOKIE, agent_token(self._token, agent_id), "agent.html")

    # Supervisor API ---------------------------------------------------------------------------

    async def _api_agents(self, request: web.Request) -> web.Response:
        self._require_supervisor(request)
        teams = _query_set(request, "team")
        levels = _query_set(request, "level")
        rows = [
            row
            for row in self.state.rows.values()
            if (teams is None or row.get("team_id") in teams) and (levels is None or row.get("level") in levels)
        ]
        return _json({"seq": self.state.seq, "ts": self.state.ts, "agents": rows})

    async def _api_breaks(self, request: web.Request) -> web.Response:
        self._require_supervisor(request)
        state = self.state
        return _json(
            {"seq": state.seq, "ts": state.ts, "breaks": list(state.open_breaks.values()), "feed": list(state.feed)}
        )

    async def _api_events(self, request: web.Request) -> web.StreamResponse:
        self._require_supervisor(request)
        return await self._stream(request, None)

    async def _api_supervisor_action(self, request: web.Request) -> web.Response:
        self._require_supervisor(request)
        break_id = request.match_info["break_id"]
        body = await _json_body(request)
        button = _button(body, SUPERVISOR_ACTIONS)
        record = self.state.open_breaks.get(break_id)
        if record is None:
            raise _json_error(
                web.HTTPNotFound,
                f"break {break_id} is not open (it has ended, or no such break was offered); reload the floor view",
            )
        return self._act(button, record["agent_id"], break_id, record["type"], body)

    # Agent API --------------------------------------------------------------------------------

    async def _api_agent(self, request: web.Request) -> web.Response:
        agent_id = request.match_info["agent_id"]
        self._require_agent(request, agent_id)
        return _json(self.state.agent_state(agent_id))

    async def _api_agent_events(self, request: web.Request) -> web.StreamResponse:
        agent_id = request.match_info["agent_id"]
        self._require_agent(request, agent_id)
        return await self._stream(request, agent_id)

    async def _api_agent_request(self, request: web.Request) -> web.Response:
        agent_id = request.match_info["agent_id"]
        self._require_agent(request, agent_id)
        body = await _json_body(request)
        if agent_id not in self.state.rows:
            raise _json_error(web.HTTPNotFound, f"agent {agent_id} is not on this floor; check the address")
        record = self.state.open_break_of(agent_id)
        status = record["type"] if record is not None else None
        break_id = record["break_id"] if record is not None else None
        return self._act(AGENT_ACTIONS["request"], agent_id, break_id, status, body, send_break_id=False)

    async def _api_agent_action(self, request: web.Request) -> web.Response:
        agent_id = request.match_info["agent_id"]
        self._require_agent(request, agent_id)
        break_id = request.match_info["break_id"]
        body = await _json_body(request)
        button = _button(body, {name: AGENT_ACTIONS[name] for name in ("accept", "decline")})
        record = self.state.open_breaks.get(break_id)
        if record is None or record["agent_id"] != agent_id:
            raise _json_error(
                web.HTTPNotFound, f"you have no open break {break_id}; it may have ended, so reload this page"
            )
        return self._act(button, agent_id, break_id, record["type"], body)

    # Actions ----------------------------------------------------------------------------------

    def _act(
        self,
        button: ButtonAction,
        agent_id: str,
        break_id: str | None,
        status: str | None,
        body: dict,
        send_break_id: bool = True,
    ) -> web.Response:
        note = body.get("note")
        if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE_CHARS):
            raise _json_error(web.HTTPBadRequest, f"note must be text of at most {MAX_NOTE_CHARS} characters")
        try:
            check_action(button, agent_id, break_id, status)
        except ActionRejected as exc:
            raise _json_error(web.HTTPConflict, str(exc)) from None
        try:
            document = build_break_action(
                button, agent_id, self.clock(), break_id=break_id if send_break_id else None, note=note or None
            )
        except InvalidEventError as exc:
            raise _json_error(web.HTTPBadRequest, str(exc)) from None
        self.sink(document)
        log.info("%s %s of agent %s by %s", button.name, break_id or "a new break", agent_id, button.actor)
        return _json({"status": "submitted", "button": button.name, "event": document}, status=202)

    # Event streams ----------------------------------------------------------------------------

    async def _stream(self, request: web.Request, agent_id: str | None) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no", **_SECURITY_HEADERS}
        )
        await response.prepare(request)
        subscriber = _Subscriber(agent_id)
        self._subscribers.add(subscriber)
        try:
            await response.write(b"retry: 2000\n\n" + self._full_state_message(agent_id))
            while True:
                try:
                    message = await asyncio.wait_for(subscriber.queue.get(), KEEPALIVE_S)
                except asyncio.TimeoutError:
                    message = b": keepalive\n\n"
                if message is None:
                    break
                if subscriber.behind:
                    subscriber.behind = False
                    message = self._full_state_message(agent_id)
                await response.write(message)
        except ConnectionError as exc:
            log.debug("event stream closed by the browser: %s", exc)
        finally:
            self._subscribers.discard(subscriber)
        return response

    def _full_state_message(self, agent_id: str | None) -> bytes:
        if agent_id is None:
            return _sse("state", self.state.full_state())
        return _sse("state", self.state.agent_state(agent_id))


def _split_by_agent(update: dict) -> dict[str, dict]:
    """Return one agent view's share of ``update`` per agent it touches."""
    parts: dict[str, dict] = {}

    def part(agent_id: str) -> dict:
        if agent_id not in parts:
            parts[agent_id] = {"seq": update["seq"], "ts": update["ts"], "agents": [], "transitions": []}
        return parts[agent_id]

    for row in update["agents"]:
        part(row["agent_id"])["agents"].append(row)
    for record in update["transitions"]:
        part(record["agent_id"])["transitions"].append(record)
    return parts


def _sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _json(document: dict, status: int = 200) -> web.Response:
    return web.json_response(document, status=status, headers=_SECURITY_HEADERS)


def _json_error(kind: type[web.HTTPException], message: str) -> web.HTTPException:
    return kind(text=json.dumps({"error": message}), content_type="application/json", headers=_SECURITY_HEADERS)


async def _json_body(request: web.Request) -> dict:
    # Requiring JSON keeps plain cross-site form posts out, on top of the SameSite=Strict cookie.
    if request.content_type != "application/json":
        raise _json_error(
            web.HTTPUnsupportedMediaType,
            f"send the action as JSON with Content-Type: application/json, not {request.content_type!r}",
        )
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        raise _json_error(web.HTTPForbidden, f"actions are accepted from this server's own pages only, not from {origin}")
    try:
        body = await request.json()
    except ValueError:
        raise _json_error(web.HTTPBadRequest, 'the body is not valid JSON; send e.g. {"action": "approve"}') from None
    if not isinstance(body, dict):
        raise _json_error(web.HTTPBadRequest, 'the body must be a JSON object, e.g. {"action": "approve"}')
    return body


def _button(body: dict, buttons: dict[str, ButtonAction]) -> ButtonAction:
    name = body.get("action")
    button = buttons.get(name) if isinstance(name, str) else None
    if button is None:
        raise _json_error(
            web.HTTPBadRequest, f"action {name!r} is not valid here; use one of {', '.join(buttons)}"
        )
    return button


def _query_set(request: web.Request, name: str) -> set[str] | None:
    values = [part for value in request.query.getall(name, []) for part in value.split(",") if part]
    return set(values) if values else None


def _login_page(status: int, message: str) -> web.Response:
    body = (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>agentload: token needed</title>"
        "<link rel=\"stylesheet\" href=\"/static/floor.css\"><link rel=\"icon\" href=\"/static/favicon.svg\"></head><body><main class=\"login\">"
        f"<h1>Token needed</h1><p>{message}</p>"
        "<p>Open the address that <code>agentload run</code> printed at start (it ends in <code>?token=…</code>), "
        "or ask your supervisor for your own link.</p></main></body></html>"
    )
    return web.Response(status=status, text=body, content_type="text/html", headers=_SECURITY_HEADERS)


def agent_link(base_url: str, token: str, agent_id: str) -> str:
    """Return the address that opens the agent view of ``agent_id`` with that agent's token."""
    return f"{base_url.rstrip('/')}/agent/{quote(agent_id, safe='')}?token={agent_token(token, agent_id)}"
