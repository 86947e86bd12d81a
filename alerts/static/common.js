// Shared by the floor view and the agent view: wording, time formats, the event stream, actions.

export const LEVEL_WORDS = { red: "RED", amber: "AMBER", green: "GREEN" };

export const STATE_WORDS = {
  available: "available",
  on_call: "on a call",
  acw: "after-call work",
  break: "on break",
  off_queue: "off queue",
  offline: "offline",
};

export const TRANSITION_WORDS = {
  suggested: "break offered",
  deferred: "break deferred",
  accepted: "break accepted",
  declined: "break declined",
  expired: "break offer expired",
  started: "break started",
  completed: "break completed",
  cancelled: "break cancelled",
};

export function clockText(iso) {
  return iso ? `${iso.slice(11, 19)} UTC` : "not yet known";
}

export function minutesText(seconds) {
  const minutes = Math.max(0, Math.floor(seconds / 60));
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}

export function sinceRecoveryText(lastRecoveryEnd, nowMs) {
  if (!lastRecoveryEnd) return "no recovery yet";
  return `recovered ${minutesText((nowMs - Date.parse(lastRecoveryEnd)) / 1000)} ago`;
}

// "customer sentiment ...: 10.1 of 40.2 load points" with share 0.53 reads as
// "customer sentiment ... (53%, 10.1 of 40.2 load points)".
export function reasonText(reason) {
  const share = `${Math.round(reason.share * 100)}%`;
  const split = reason.detail.lastIndexOf(": ");
  if (split < 0) return `${reason.detail} (${share})`;
  return `${reason.detail.slice(0, split)} (${share}, ${reason.detail.slice(split + 2)})`;
}

export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

// Opens the server-sent event stream. The browser reconnects on its own after a drop, and the
// server starts every connection with the full state, so no change is missed.
export function connect(url, { onState, onUpdate }) {
  const connection = document.getElementById("connection");
  const source = new EventSource(url);
  source.addEventListener("open", () => setText(connection, "live"));
  source.addEventListener("error", () => {
    // The browser gives up after an HTTP error, such as a token that a restart made stale.
    const closed = source.readyState === EventSource.CLOSED;
    setText(connection, closed ? "disconnected: open the address printed at start again" : "reconnecting");
  });
  source.addEventListener("state", (event) => onState(JSON.parse(event.data)));
  source.addEventListener("update", (event) => onUpdate(JSON.parse(event.data)));
  return source;
}

export function showFloorTime(message) {
  const time = document.getElementById("floor-time");
  if (!message.ts) return;
  setText(time, clockText(message.ts));
  time.dateTime = message.ts;
  time.dataset.ts = message.ts;
  time.dataset.seq = String(message.seq);
}

export async function postAction(url, body) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  let document = {};
  try {
    document = await response.json();
  } catch {
    document = { error: `the server responded with HTTP ${response.status} and no message` };
  }
  if (!response.ok) throw new Error(document.error || `the server responded with HTTP ${response.status}`);
  return document;
}
