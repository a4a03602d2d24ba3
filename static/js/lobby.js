/** The lobby: consultant cards kept live from the caller socket's pushes. */

import { isolate, write } from "./callview.js";
import { Signaling } from "./signaling.js";
import { statusText, waitingText } from "./words.js";

const list = document.querySelector("[data-lobby]");

function cardFor(slug) {
  return list.querySelector(`[data-testid="consultant-card"][data-slug="${CSS.escape(slug)}"]`);
}

function newCard(consultant) {
  const item = document.createElement("li");
  const card = document.createElement("a");
  card.className = "card";
  card.dataset.testid = "consultant-card";
  card.dataset.slug = consultant.slug;
  card.href = `/call/${encodeURIComponent(consultant.slug)}/`;
  const name = document.createElement("span");
  name.className = "card-name";
  name.dataset.name = "";
  const meta = document.createElement("span");
  meta.className = "card-meta";
  const badge = document.createElement("span");
  badge.className = "badge";
  badge.dataset.statusText = "";
  const waiting = document.createElement("span");
  waiting.dataset.queueLength = "";
  meta.append(badge, " ", waiting);
  card.append(name, meta);
  item.append(card);
  return item;
}

function show(consultants) {
  const keep = new Set(consultants.map((c) => c.slug));
  for (const card of list.querySelectorAll('[data-testid="consultant-card"]')) {
    if (!keep.has(card.dataset.slug)) card.closest("li").remove();
  }
  for (const consultant of consultants) {
    let card = cardFor(consultant.slug);
    if (!card) {
      list.append(newCard(consultant));
      card = cardFor(consultant.slug);
    }
    card.dataset.status = consultant.status;
    write(card.querySelector("[data-name]"), isolate(consultant.name));
    card.querySelector("[data-status-text]").textContent = statusText(consultant.status);
    card.querySelector("[data-queue-length]").textContent = waitingText(consultant.queue_length);
  }
  const empty = list.querySelector("[data-empty]");
  if (empty) empty.hidden = consultants.length > 0;
}

const signaling = new Signaling("/ws/call/");
signaling.on("hello", (frame) => show(frame.consultants || []));
signaling.on("consultants", (frame) => show(frame.consultants || []));
signaling.connect();
