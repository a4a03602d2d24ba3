/**
 * After a refusal (or the consultant going offline): the other consultants who
 * take calls now, each a one-click move that keeps the caller's place in line
 * (their original join time, docs/protocol.md: `move_token`), so the caller
 * is never stranded.
 */

import { gettext, interpolate } from "./i18n.js";
import { isolate, write } from "./callview.js";
import { statusText } from "./words.js";

/** `onMove(slug)` runs when the caller picks a consultant. */
export function showOthers(panel, consultants, ownSlug, onMove) {
  const others = consultants.filter((c) => c.slug !== ownSlug && c.status !== "offline");
  const items = others.map((consultant) => {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.testid = "move-to";
    button.dataset.slug = consultant.slug;
    const words = gettext("Wait for %(name)s (%(status)s), keeping your place in line");
    write(button, interpolate(words, { name: isolate(consultant.name), status: statusText(consultant.status) }));
    button.addEventListener("click", () => onMove(consultant.slug));
    const item = document.createElement("li");
    item.append(button);
    return item;
  });
  panel.querySelector('[data-testid="move-options"]').replaceChildren(...items);
  panel.hidden = items.length === 0;
}
