/**
 * The operations board (admin): polls the floor's state every second and
 * draws one card per consultant with their call and queue; staff with the
 * permission act on it (end a call, remove or move a waiting caller, set a
 * consultant away or offline), each after a confirmation. Names are written
 * with textContent only.
 */

import { CONNECTIVITY_TEXT } from "./deskqueue.js";
import { gettext, interpolate } from "./i18n.js";

// Under a second, so that a join or an end shows within one (with the request).
const POLL_MS = 800;
const root = document.querySelector("[data-board]");
const list = root.querySelector("[data-board-list]");
const messageLine = root.querySelector("[data-board-message]");
const updatedLine = root.querySelector("[data-board-updated]");
const canAct = root.dataset.canAct === "1";
const csrf = root.querySelector("input[name=csrfmiddlewaretoken]").value;
// Each consultant's card, and what it was drawn from (the structure, not the clocks).
const cards = new Map();

const STATUS = {
  online: gettext("online"),
  busy: gettext("in a call"),
  away: gettext("away"),
  offline: gettext("offline"),
};
const MEDIA = {
  connecting: gettext("connecting"),
  connected: gettext("media connected"),
  reconnecting: gettext("reconnecting"),
};

function clock(seconds) {
  const minutes = Math.floor(seconds / 60);
  return `${minutes}:${String(seconds % 60).padStart(2, "0")}`;
}

function el(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

function button(testid, text, onClick) {
  const node = el("button", { type: "button", "data-testid": testid }, text);
  node.addEventListener("click", onClick);
  return node;
}

async function act(question, body) {
  if (!window.confirm(question)) return;
  let reply;
  try {
    const response = await fetch(root.dataset.actUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      credentials: "same-origin",
      body: JSON.stringify(body),
    });
    reply = await response.json();
  } catch {
    reply = { message: gettext("The action could not be sent; try again.") };
  }
  messageLine.textContent = reply.message || "";
  poll();
}

function callPart(consultant) {
  const call = consultant.call;
  const node = el("div", {
    "data-testid": "ops-call",
    "data-consultation": String(call.consultation),
    "data-media": call.media,
  });
  node.append(el("strong", {}, call.caller), " · ");
  node.append(el("span", { "data-clock": "call" }, clock(call.seconds)), " · ");
  let media = MEDIA[call.media] || call.media;
  if (call.candidate) media += ` (${call.relayed ? gettext("relayed") : call.candidate})`;
  if (call.rtt_ms !== null) media += ` · RTT ${call.rtt_ms} ms`;
  node.append(el("span", {}, media));
  if (canAct) {
    const question = interpolate(gettext("End the call of %(caller)s with %(name)s?"), {
      caller: call.caller,
      name: consultant.name,
    });
    node.append(
      " ",
      button("ops-end-call", gettext("End call"), () =>
        act(question, { action: "end-call", consultation: call.consultation }),
      ),
    );
  }
  return node;
}

function queueItem(consultant, caller, index, others) {
  const item = el("li", {
    "data-testid": "ops-queue-item",
    "data-ticket": caller.ticket,
    "data-connection": caller.connection,
    "data-connectivity": caller.connectivity || "",
  });
  const who = el("span", { class: "ops-who" }, `${index + 1}. `);
  who.append(el("strong", {}, caller.name));
  if (caller.came_from) who.append(" ", el("span", {}, interpolate(gettext("(from %(name)s)"), { name: caller.came_from })));
  item.append(who, el("span", { "data-clock": caller.ticket }, clock(caller.waiting_seconds)));
  if (caller.connection !== "connected") item.append(el("span", {}, MEDIA.reconnecting));
  if (caller.connectivity) item.append(el("span", { class: "badge" }, CONNECTIVITY_TEXT[caller.connectivity]()));
  if (!canAct) return item;
  item.append(
    button("ops-remove", gettext("Remove"), () =>
      act(interpolate(gettext("Remove %(caller)s from the queue? They are told."), { caller: caller.name }), {
        action: "remove",
        ticket: caller.ticket,
      }),
    ),
  );
  if (others.length) {
    const select = el("select", { "data-move-target": "", "aria-label": gettext("Move to") });
    for (const other of others) select.append(el("option", { value: other.slug }, other.name));
    const move = button("ops-move", gettext("Move"), () => {
      const target = others.find((o) => o.slug === select.value);
      const question = interpolate(gettext("Move %(caller)s to %(name)s's queue, keeping their join time?"), {
        caller: caller.name,
        name: target.name,
      });
      act(question, { action: "move", ticket: caller.ticket, to: target.slug });
    });
    item.append(select, move);
  }
  return item;
}

function card(consultant, everyone) {
  const node = el("section", {
    "data-testid": "ops-consultant",
    "data-slug": consultant.slug,
    "data-status": consultant.status,
  });
  const head = el("h2", {}, consultant.name);
  head.append(" ", el("span", { class: "ops-status", "data-status": consultant.status }, STATUS[consultant.status]));
  node.append(head);
  if (canAct && consultant.status !== "offline") {
    const actions = el("p");
    if (consultant.status !== "away") {
      actions.append(
        button("ops-set-away", gettext("Set away"), () =>
          act(interpolate(gettext("Set %(name)s away?"), { name: consultant.name }), {
            action: "presence",
            consultant: consultant.slug,
            status: "away",
          }),
        ),
        " ",
      );
    }
    actions.append(
      button("ops-set-offline", gettext("Set offline"), () =>
        act(
          interpolate(gettext("Set %(name)s offline? Their desk closes, a call ends and waiting callers are refused."), {
            name: consultant.name,
          }),
          { action: "presence", consultant: consultant.slug, status: "offline" },
        ),
      ),
    );
    node.append(actions);
  }
  if (consultant.call) node.append(callPart(consultant));
  const queue = el("ul", { "aria-label": gettext("Waiting") });
  const others = everyone.filter((o) => o.slug !== consultant.slug);
  consultant.queue.forEach((caller, i) => queue.append(queueItem(consultant, caller, i, others)));
  if (!consultant.queue.length) queue.append(el("li", {}, gettext("Nobody waiting.")));
  node.append(queue);
  return node;
}

/** What a card shows apart from its clocks: a new shape redraws it. */
function shape(consultant, everyone) {
  const strip = { ...consultant, call: consultant.call && { ...consultant.call, seconds: 0 } };
  strip.queue = consultant.queue.map((c) => ({ ...c, waiting_seconds: 0 }));
  return JSON.stringify([strip, everyone.map((o) => [o.slug, o.name])]);
}

function draw(consultants) {
  const seen = new Set();
  let previous = null;
  for (const consultant of consultants) {
    seen.add(consultant.slug);
    const key = shape(consultant, consultants);
    let entry = cards.get(consultant.slug);
    if (!entry || entry.key !== key) {
      const node = card(consultant, consultants);
      if (entry) entry.node.replaceWith(node);
      entry = { node, key };
      cards.set(consultant.slug, entry);
    } else {
      if (consultant.call) entry.node.querySelector('[data-clock="call"]').textContent = clock(consultant.call.seconds);
      for (const caller of consultant.queue) {
        const line = entry.node.querySelector(`[data-clock="${CSS.escape(caller.ticket)}"]`);
        if (line) line.textContent = clock(caller.waiting_seconds);
      }
    }
    // Keep the server's order (by name).
    const expected = previous ? previous.nextSibling : list.firstChild;
    if (expected !== entry.node) list.insertBefore(entry.node, expected);
    previous = entry.node;
  }
  for (const [slug, entry] of cards) {
    if (!seen.has(slug)) {
      entry.node.remove();
      cards.delete(slug);
    }
  }
}

let timer = null;
let running = false;
let again = false;

async function poll() {
  // One poll at a time: an action asks for one while another is under way.
  if (running) {
    again = true;
    return;
  }
  running = true;
  clearTimeout(timer);
  try {
    const response = await fetch(root.dataset.stateUrl, { credentials: "same-origin", cache: "no-store" });
    if (!response.ok) throw new Error(String(response.status));
    draw((await response.json()).consultants);
    updatedLine.textContent = interpolate(gettext("Updated %(time)s"), { time: new Date().toLocaleTimeString() });
  } catch {
    updatedLine.textContent = gettext("The board could not be updated; retrying.");
  } finally {
    running = false;
  }
  if (again) {
    again = false;
    return poll();
  }
  timer = setTimeout(poll, POLL_MS);
}

poll();
