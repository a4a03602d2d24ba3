/**
 * What a screen reader hears (the words of `urgent` are short cues of their
 * own, never a copy of a sentence the page shows, so no text is there twice): `polite(region, text)` writes a polite live
 * region only when its words change (a push that repeats the same place says
 * nothing), and `urgent(text)` says something at once through the page's
 * assertive region (`[data-announce-urgent]`): a turn arriving, a call
 * connecting or dropping. `focusOn(element)` moves focus there, and
 * `focusLost()` tells whether focus sits on nothing or on a part now hidden.
 */

// Long enough for a screen reader to pick the words up.
const URGENT_KEPT_MS = 1500;

export function polite(region, text) {
  if (region && region.textContent !== text) region.textContent = text;
}

let urgentTimers = [];

export function urgent(text) {
  const region = document.querySelector("[data-announce-urgent]");
  if (!region) return;
  for (const timer of urgentTimers) clearTimeout(timer);
  // Emptied first, so that the same words twice are said twice; emptied
  // again once said (a removal is not announced), so the words are not left
  // in the page twice beside the visible ones.
  region.textContent = "";
  urgentTimers = [
    setTimeout(() => {
      region.textContent = text;
    }, 50),
    setTimeout(() => {
      region.textContent = "";
    }, URGENT_KEPT_MS),
  ];
}

export function focusOn(element) {
  if (!element || element.hidden) return;
  if (!element.matches("a[href], button, input, select, textarea, summary, [tabindex]")) {
    element.setAttribute("tabindex", "-1");
  }
  element.focus();
}

export function focusLost() {
  const element = document.activeElement;
  return !element || element === document.body || !element.checkVisibility();
}
