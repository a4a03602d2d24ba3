/**
 * What a screen reader hears: `polite(region, text)` writes a polite live
 * region only when its words change (a push that repeats the same place says
 * nothing), and `urgent(text)` says something at once through the page's
 * assertive region (`[data-announce-urgent]`): a turn arriving, a call
 * connecting or dropping. `focusOn(element)` moves focus there, and
 * `focusLost()` tells whether focus sits on nothing or on a part now hidden.
 */

export function polite(region, text) {
  if (region && region.textContent !== text) region.textContent = text;
}

export function urgent(text) {
  const region = document.querySelector("[data-announce-urgent]");
  if (!region) return;
  // Emptied first, so that the same words twice are said twice.
  region.textContent = "";
  setTimeout(() => {
    region.textContent = text;
  }, 50);
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
