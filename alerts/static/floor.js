// The supervisor floor view: agents by team, open break offers with their actions, the alert feed.
import {
  LEVEL_WORDS, STATE_WORDS, TRANSITION_WORDS, clockText, connect, element, minutesText, postAction,
  reasonText, setText, showFloorTime, sinceRecoveryText,
} from "./common.js";

const FEED_SIZE = 200;
const OPEN = new Set(["suggested", "deferred", "accepted", "started"]);
const BUTTONS = {
  approve: { label: "Approve", statuses: new Set(["suggested", "deferred"]) },
  defer: { label: "Defer", statuses: new Set(["suggested", "deferred"]) },
  cancel: { label: "Cancel", statuses: OPEN },
};
const SENT_WORDS = {
  approve: "Approval sent; the break shows as accepted once the floor applies it.",
  defer: "Deferral sent; the offer ends, and the agent can be offered a break again after the cooldown.",
  cancel: "Cancellation sent; the break shows as cancelled once the floor applies it.",
};

const cards = new Map();
const teams = new Map();
const offers = new Map();
let floorNowMs = 0;

const teamsNode = document.getElementById("teams");
const offersNode = document.getElementById("offers");
const feedNode = document.getElementById("feed");
const teamFilter = document.getElementById("team-filter");
// A constructed style sheet, because the page's Content-Security-Policy forbids inline styles.
const filterSheet = new CSSStyleSheet();
document.adoptedStyleSheets = [...document.adoptedStyleSheets, filterSheet];

// Rows --------------------------------------------------------------------------------------------

function teamSection(teamId) {
  let team = teams.get(teamId);
  if (team) return team;
  const section = element("section", "team filterable");
  section.dataset.team = teamId;
  const heading = element("h3", "team-name", teamId);
  const list = element("ul", "agents");
  section.append(heading, list);
  team = { section, heading, list, count: 0 };
  teams.set(teamId, team);

  const names = [...teams.keys()].sort();
  const next = names[names.indexOf(teamId) + 1];
  teamsNode.insertBefore(section, next ? teams.get(next).section : null);
  const option = element("option", "", teamId);
  option.value = teamId;
  const options = [...teamFilter.options].slice(1);
  teamFilter.insertBefore(option, options.find((other) => other.value > teamId) || null);
  return team;
}

function newCard(row) {
  const item = element("li", "agent filterable");
  const card = {
    item,
    teamId: null,
    name: element("span", "name", row.agent_id),
    level: element("span", "level"),
    load: element("span", "load"),
    state: element("span", "state"),
    recovery: element("span", "recovery"),
    calls: element("span", "calls"),
    brk: element("span", "break-status"),
    row,
  };
  item.append(card.name, card.level, card.load, card.state, card.recovery, card.calls, card.brk);
  item.dataset.agent = row.agent_id;
  cards.set(row.agent_id, card);
  return card;
}

function placeCard(card, teamId) {
  if (card.teamId === teamId) return;
  if (card.teamId !== null) {
    const old = teams.get(card.teamId);
    old.count -= 1;
    setText(old.heading, `${card.teamId} (${old.count} agents)`);
  }
  const team = teamSection(teamId);
  const after = [...team.list.children].find((node) => node.dataset.agent > card.row.agent_id);
  team.list.insertBefore(card.item, after || null);
  team.count += 1;
  setText(team.heading, `${teamId} (${team.count} agents)`);
  card.teamId = teamId;
  card.item.dataset.team = teamId;
}

function renderRow(row) {
  const card = cards.get(row.agent_id) || newCard(row);
  card.row = row;
  placeCard(card, row.team_id);
  const level = row.level || "green";
  if (card.item.dataset.level !== level) {
    card.item.dataset.level = level;
    card.item.className = `agent filterable lv-${level}`;
  }
  setText(card.level, `level ${LEVEL_WORDS[level]}`);
  setText(card.load, `load ${row.load.toFixed(1)}`);
  setText(card.state, STATE_WORDS[row.state] || "state not known yet");
  setText(card.calls, callsText(row.calls_since_break));
  setText(card.brk, row.break_status ? TRANSITION_WORDS[row.break_status] : "");
  setText(card.recovery, sinceRecoveryText(row.last_recovery_end, floorNowMs));
}

function callsText(calls) {
  if (calls === null) return "";
  return `${calls} ${calls === 1 ? "call" : "calls"} since break`;
}

function refreshRecoveryTimes() {
  for (const card of cards.values()) {
    setText(card.recovery, sinceRecoveryText(card.row.last_recovery_end, floorNowMs));
  }
}

// Filters -----------------------------------------------------------------------------------------

function hiddenLevels() {
  return [...document.querySelectorAll('input[name="level"]')].filter((box) => !box.checked).map((box) => box.value);
}

function applyFilters() {
  const rules = hiddenLevels().map((level) => `.filterable[data-level="${level}"] { display: none; }`);
  if (teamFilter.value) {
    rules.push(`.filterable[data-team]:not([data-team="${CSS.escape(teamFilter.value)}"]) { display: none; }`);
  }
  filterSheet.replaceSync(rules.join("\n"));
  updateCounts();
}

function updateCounts() {
  const hidden = new Set(hiddenLevels());
  const counts = { red: 0, amber: 0, green: 0 };
  let shown = 0;
  for (const card of cards.values()) {
    const level = card.item.dataset.level;
    if (hidden.has(level) || (teamFilter.value && card.teamId !== teamFilter.value)) continue;
    counts[level] += 1;
    shown += 1;
  }
  const where = teamFilter.value ? ` in team ${teamFilter.value}` : "";
  setText(
    document.getElementById("counts"),
    `${shown} agents shown${where}: ${counts.red} red, ${counts.amber} amber, ${counts.green} green.`,
  );
}

teamFilter.addEventListener("change", applyFilters);
for (const box of document.querySelectorAll('input[name="level"]')) box.addEventListener("change", applyFilters);

// Break offers ------------------------------------------------------------------------------------

function reasonsList(record) {
  const list = element("ul", "reasons");
  for (const reason of record.reasons.slice(0, 4)) list.append(element("li", "", reasonText(reason)));
  return list;
}

function offerStatusText(record) {
  const parts = [
    `${TRANSITION_WORDS[record.type]}`,
    `${minutesText(record.recommended_break_s)} recommended`,
    `level ${LEVEL_WORDS[record.level]}, load ${record.load.toFixed(1)}`,
  ];
  if (record.type === "suggested" && record.offer_expires_at) parts.push(`offer ends ${clockText(record.offer_expires_at)}`);
  return parts.join(" · ");
}

function renderOffer(record) {
  let offer = offers.get(record.break_id);
  if (!offer) {
    const item = element("li", "offer filterable");
    item.dataset.breakId = record.break_id;
    const heading = element("h3", "offer-agent", `${record.agent_id}, team ${record.team_id}`);
    heading.tabIndex = -1;
    offer = {
      item,
      heading,
      status: element("p", "offer-status"),
      why: element("p", "offer-why"),
      reasons: element("ul", "reasons"),
      note: element("p", "offer-note"),
      actions: element("div", "actions"),
      result: element("p", "result"),
      buttons: "",
    };
    offer.result.setAttribute("role", "status");
    item.append(offer.heading, offer.status, offer.why, offer.reasons, offer.note, offer.actions, offer.result);
    offers.set(record.break_id, offer);
    offersNode.prepend(item);
  }
  offer.record = record;
  offer.item.dataset.team = record.team_id;
  offer.item.dataset.level = record.level;
  offer.item.dataset.status = record.type;
  setText(offer.status, offerStatusText(record));
  setText(offer.why, `Why: ${record.trigger_words}.`);
  offer.reasons.replaceWith((offer.reasons = reasonsList(record)));
  setText(offer.note, record.note || "");

  const names = Object.keys(BUTTONS).filter((name) => BUTTONS[name].statuses.has(record.type));
  if (offer.buttons !== names.join()) {
    const hadFocus = offer.actions.contains(document.activeElement);
    offer.actions.replaceChildren(
      ...names.map((name) => {
        const button = element("button", `action action-${name}`);
        button.type = "button";
        button.dataset.action = name;
        button.append(BUTTONS[name].label, element("span", "visually-hidden", ` break for ${record.agent_id}`));
        return button;
      }),
    );
    offer.buttons = names.join();
    if (hadFocus) (offer.actions.querySelector("button") || offer.heading).focus();
  }
  setText(document.getElementById("no-offers"), offers.size ? "" : "No break is open.");
}

function removeOffer(breakId) {
  const offer = offers.get(breakId);
  if (!offer) return;
  if (offer.item.contains(document.activeElement)) {
    const next = offer.item.nextElementSibling || offer.item.previousElementSibling;
    (next ? next.querySelector("button") || next.querySelector("h3") : document.getElementById("offers-heading")).focus();
  }
  offer.item.remove();
  offers.delete(breakId);
  setText(document.getElementById("no-offers"), offers.size ? "" : "No break is open.");
}

offersNode.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const item = button.closest(".offer");
  const offer = offers.get(item.dataset.breakId);
  const action = button.dataset.action;
  setText(offer.result, "Sending…");
  try {
    await postAction(`/api/breaks/${encodeURIComponent(item.dataset.breakId)}/actions`, { action });
    setText(offer.result, SENT_WORDS[action]);
  } catch (error) {
    setText(offer.result, `Not sent: ${error.message}`);
  }
});

// Alert feed --------------------------------------------------------------------------------------

function feedItem(record) {
  const item = element("li", "feed-item filterable");
  item.dataset.team = record.team_id;
  item.dataset.level = record.level;
  item.dataset.type = record.type;
  const time = element("time", "", clockText(record.time));
  time.dateTime = record.time;
  const by = record.actor === "agentload" ? "" : ` by ${record.actor}`;
  const summary = element(
    "span",
    "feed-summary",
    ` ${record.agent_id} (${record.team_id}): ${TRANSITION_WORDS[record.type]}${by}; level ${LEVEL_WORDS[record.level]}, load ${record.load.toFixed(1)}.`,
  );
  item.append(time, summary);
  if (record.type === "suggested" || record.type === "deferred") {
    item.append(element("span", "feed-why", ` Why: ${record.trigger_words}.`));
    item.append(reasonsList(record));
  }
  if (record.note) item.append(element("span", "feed-note", ` Note: ${record.note}.`));
  return item;
}

function addToFeed(records) {
  const fragment = document.createDocumentFragment();
  for (const record of records.slice(-FEED_SIZE).reverse()) fragment.append(feedItem(record));
  feedNode.prepend(fragment);
  while (feedNode.children.length > FEED_SIZE) feedNode.lastElementChild.remove();
}

function announce(records) {
  const offered = records.filter((record) => record.type === "suggested" || record.type === "deferred");
  if (!offered.length) return;
  const first = offered[0];
  const more = offered.length > 1 ? ` and ${offered.length - 1} more` : "";
  setText(
    document.getElementById("announcer"),
    `${TRANSITION_WORDS[first.type]} for ${first.agent_id}, team ${first.team_id}: ${first.trigger_words}${more}.`,
  );
}

function applyTransitions(records) {
  for (const record of records) {
    if (OPEN.has(record.type)) renderOffer(record);
    else removeOffer(record.break_id);
  }
}

// Stream ------------------------------------------------------------------------------------------

function setFloorTime(message) {
  if (message.ts) floorNowMs = Date.parse(message.ts);
  showFloorTime(message);
}

connect("/api/events", {
  onState(state) {
    setFloorTime(state);
    for (const row of state.agents) renderRow(row);
    for (const offer of [...offers.keys()]) removeOffer(offer);
    for (const record of state.breaks) renderOffer(record);
    feedNode.replaceChildren();
    addToFeed(state.feed);
    refreshRecoveryTimes();
    applyFilters();
  },
  onUpdate(update) {
    setFloorTime(update);
    for (const row of update.agents) renderRow(row);
    applyTransitions(update.transitions);
    addToFeed(update.transitions);
    announce(update.transitions);
    refreshRecoveryTimes();
    if (update.agents.length) updateCounts();
  },
});
