// The agent view: this agent's own level, open break and recent break events, and no other agent's.
import {
  LEVEL_WORDS, STATE_WORDS, TRANSITION_WORDS, clockText, connect, element, minutesText, postAction,
  reasonText, setText, showFloorTime, sinceRecoveryText,
} from "./common.js";

const HISTORY_SIZE = 20;
const OPEN = new Set(["suggested", "deferred", "accepted", "started"]);

const agentId = decodeURIComponent(window.location.pathname.split("/")[2]);
const base = `/api/agents/${encodeURIComponent(agentId)}`;
let row = null;
let openBreak = null;
let floorNowMs = 0;

const offerNode = document.getElementById("offer");
const noOfferNode = document.getElementById("no-offer");
const acceptButton = document.getElementById("accept");
const declineButton = document.getElementById("decline");
const result = document.getElementById("result");
const history = document.getElementById("history");

setText(document.getElementById("agent-name"), `(${agentId})`);

function renderSummary() {
  const summary = document.getElementById("summary");
  if (!row) {
    setText(summary, "Waiting for your first update.");
    return;
  }
  const parts = [
    `Workload level ${LEVEL_WORDS[row.level]} (load ${row.load.toFixed(1)})`,
    STATE_WORDS[row.state] || "state not known yet",
    row.calls_since_break === null
      ? ""
      : `${row.calls_since_break} ${row.calls_since_break === 1 ? "call" : "calls"} since your last break`,
    sinceRecoveryText(row.last_recovery_end, floorNowMs),
  ];
  setText(summary, `${parts.filter(Boolean).join(" · ")}.`);
}

function offerText(record) {
  const length = minutesText(record.recommended_break_s);
  switch (record.type) {
    case "suggested":
      return `A recovery break of ${length} is offered to you until ${clockText(record.offer_expires_at)}.`;
    case "deferred":
      return `A recovery break of ${length} is waiting for a free place in your team; you will be offered it then.`;
    case "accepted":
      return `Your recovery break of ${length} is accepted; go on break in your phone system to start it.`;
    default:
      return `Your recovery break of ${length} has started.`;
  }
}

function renderBreak() {
  const hadFocus = offerNode.contains(document.activeElement) || noOfferNode.contains(document.activeElement);
  const focusedId = document.activeElement && document.activeElement.id;
  offerNode.hidden = !openBreak;
  noOfferNode.hidden = Boolean(openBreak);
  if (openBreak) {
    setText(document.getElementById("offer-status"), offerText(openBreak));
    setText(document.getElementById("offer-why"), `Why: ${openBreak.trigger_words}.`);
    const reasons = document.getElementById("offer-reasons");
    reasons.replaceChildren(...openBreak.reasons.slice(0, 4).map((reason) => element("li", "", reasonText(reason))));
    acceptButton.hidden = openBreak.type !== "suggested";
    declineButton.hidden = !(openBreak.type === "suggested" || openBreak.type === "deferred");
  }
  // Keep keyboard users where they were when the buttons they used go away.
  const focused = focusedId && document.getElementById(focusedId);
  if (hadFocus && (!focused || focused.hidden || focused.closest("[hidden]"))) {
    const visible = [acceptButton, declineButton, document.getElementById("request")].find(
      (button) => !button.hidden && !button.closest("[hidden]"),
    );
    (visible || document.getElementById("break-heading")).focus();
  }
}

function addHistory(records) {
  for (const record of records) {
    const item = element("li", "feed-item");
    const time = element("time", "", clockText(record.time));
    time.dateTime = record.time;
    const by = record.actor === "agentload" ? "" : ` by ${record.actor === "agent" ? "you" : record.actor}`;
    item.append(time, ` ${TRANSITION_WORDS[record.type]}${by}.`);
    if (record.note) item.append(` Note: ${record.note}.`);
    history.prepend(item);
  }
  while (history.children.length > HISTORY_SIZE) history.lastElementChild.remove();
}

function apply(records) {
  for (const record of records) {
    if (OPEN.has(record.type)) openBreak = record;
    else if (openBreak && openBreak.break_id === record.break_id) openBreak = null;
  }
}

async function send(url, body, sentText) {
  setText(result, "Sending…");
  try {
    await postAction(url, body);
    setText(result, sentText);
  } catch (error) {
    setText(result, `Not sent: ${error.message}`);
  }
}

acceptButton.addEventListener("click", () =>
  send(`${base}/breaks/${encodeURIComponent(openBreak.break_id)}/actions`, { action: "accept" }, "Accepted; thank you."),
);
declineButton.addEventListener("click", () =>
  send(`${base}/breaks/${encodeURIComponent(openBreak.break_id)}/actions`, { action: "decline" }, "Declined."),
);
document.getElementById("request").addEventListener("click", () =>
  send(`${base}/breaks`, {}, "Your request is sent; the offer appears here shortly."),
);

connect(`${base}/events`, {
  onState(state) {
    if (state.ts) floorNowMs = Date.parse(state.ts);
    showFloorTime(state);
    row = state.agent;
    openBreak = state.break;
    history.replaceChildren();
    addHistory(state.feed.slice(-HISTORY_SIZE));
    renderSummary();
    renderBreak();
  },
  onUpdate(update) {
    if (update.ts) floorNowMs = Date.parse(update.ts);
    showFloorTime(update);
    if (update.agents.length) row = update.agents[update.agents.length - 1];
    apply(update.transitions);
    addHistory(update.transitions);
    renderSummary();
    if (update.transitions.length) renderBreak();
  },
});
