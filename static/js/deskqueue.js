/**
 * The desk's list of waiting callers: one item per `queue` entry, next first,
 * each with its own accept and refuse buttons and a live waiting time. Items
 * are reused across pushes, so that a half-typed refusal reason survives one.
 */

import { isolate, write } from "./callview.js";
import { gettext, interpolate } from "./i18n.js";
import { clockText } from "./words.js";

// The caller's pre-call check (docs/connectivity.md), as the card (and the
// operations board) says it.
export const CONNECTIVITY_TEXT = {
  direct: () => gettext("network: direct"),
  relay: () => gettext("network: relay only"),
  blocked: () => gettext("network: blocked"),
};

function showConnectivity(item, connectivity) {
  item.dataset.connectivity = connectivity;
  const badge = item.querySelector("[data-connectivity-badge]");
  badge.textContent = connectivity ? CONNECTIVITY_TEXT[connectivity]() : "";
  badge.hidden = !connectivity;
  badge.classList.toggle("warn", connectivity === "relay" || connectivity === "blocked");
}

export class DeskQueue {
  /**
   * `onAccept(ticket)`, `onRefuse(ticket, reason)` and `onTransfer(ticket,
   * colleagueSlug, note)` act on one caller.
   */
  constructor({ list, template, count, empty, onAccept, onRefuse, onTransfer }) {
    this.onTransfer = onTransfer;
    this.list = list;
    this.template = template;
    this.count = count;
    this.empty = empty;
    this.onAccept = onAccept;
    this.onRefuse = onRefuse;
    // When each caller started waiting, on this page's clock.
    this.waitingSince = new Map();
    setInterval(() => this.tick(), 1000);
  }

  get length() {
    return this.list.children.length;
  }

  /** Show `callers` (a `queue` frame's list); returns those new since the last. */
  render(callers) {
    const known = new Map([...this.list.children].map((item) => [item.dataset.ticket, item]));
    const arrivals = callers.filter((c) => !known.has(c.ticket));
    const items = callers.map((caller) => {
      const item = known.get(caller.ticket) || this.newItem(caller.ticket);
      this.fill(item, caller);
      return item;
    });
    this.list.replaceChildren(...items);
    for (const ticket of this.waitingSince.keys()) {
      if (!callers.some((c) => c.ticket === ticket)) this.waitingSince.delete(ticket);
    }
    this.count.textContent = String(callers.length);
    this.empty.hidden = callers.length > 0;
    this.tick();
    return arrivals;
  }

  /** While in a call, no caller can be accepted. */
  setBusy(busy) {
    for (const button of this.list.querySelectorAll('[data-testid="accept"]')) {
      button.disabled = busy;
    }
  }

  newItem(ticket) {
    const item = this.template.content.firstElementChild.cloneNode(true);
    item.dataset.ticket = ticket;
    const reasonInput = item.querySelector("[data-refuse-reason]");
    reasonInput.id = `refuse-${ticket}`;
    item.querySelector("[data-refuse-label]").htmlFor = reasonInput.id;
    item
      .querySelector('[data-testid="accept"]')
      .addEventListener("click", () => this.onAccept(ticket));
    item
      .querySelector('[data-testid="refuse"]')
      .addEventListener("click", () => this.onRefuse(ticket, reasonInput.value.trim()));
    const transfer = item.querySelector('[data-testid="transfer"]');
    if (transfer) {
      const to = item.querySelector("[data-transfer-to]");
      const note = item.querySelector("[data-transfer-note]");
      to.id = `transfer-to-${ticket}`;
      note.id = `transfer-note-${ticket}`;
      item.querySelector("[data-transfer-to-label]").htmlFor = to.id;
      item.querySelector("[data-transfer-note-label]").htmlFor = note.id;
      transfer.addEventListener("click", () => this.onTransfer(ticket, to.value, note.value.trim()));
    }
    return item;
  }

  fill(item, caller) {
    const name = isolate(caller.name);
    item.querySelector("[data-name]").textContent = caller.name;
    // Each item's buttons say whom they act on, for screen readers.
    const named = (format) => interpolate(format, { name });
    item.querySelector('[data-testid="accept"]').setAttribute("aria-label", named(gettext("Accept %(name)s")));
    item.querySelector('[data-testid="refuse"]').setAttribute("aria-label", named(gettext("Refuse %(name)s")));
    write(item.querySelector("[data-refuse-label]"), named(gettext("Reason for refusing %(name)s")));
    item.querySelector("[data-reason]").textContent = caller.reason || "";
    const cameFrom = item.querySelector("[data-came-from]");
    cameFrom.hidden = !caller.came_from;
    if (caller.came_from) {
      const from = { name: isolate(caller.came_from.name), note: isolate(caller.note || "") };
      write(cameFrom, interpolate(caller.note ? gettext("From %(name)s: %(note)s") : gettext("From %(name)s"), from));
    }
    const transfer = item.querySelector('[data-testid="transfer"]');
    if (transfer) transfer.setAttribute("aria-label", named(gettext("Transfer %(name)s")));
    item.querySelector("[data-audio-only]").hidden = !caller.audio_only;
    showConnectivity(item, caller.connectivity || "");
    item.querySelector("[data-reconnecting]").hidden = !caller.reconnecting;
    item.classList.toggle("reconnecting", Boolean(caller.reconnecting));
    this.waitingSince.set(caller.ticket, performance.now() - caller.waiting_seconds * 1000);
  }

  tick() {
    const now = performance.now();
    for (const item of this.list.children) {
      const since = this.waitingSince.get(item.dataset.ticket);
      if (since === undefined) continue;
      const seconds = Math.max(0, Math.floor((now - since) / 1000));
      item.querySelector("[data-waited]").textContent = interpolate(gettext("waiting %(time)s"), {
        time: clockText(seconds),
      });
    }
  }
}
