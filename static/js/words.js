/** Words several pages show for the same thing, in the page's language. */

import { gettext, interpolate, ngettext, pgettext } from "./i18n.js";

/** Short cues said at once (announce.js `urgent`), apart from the visible sentences. */
export const CUES = {
  turn: gettext("Your turn has come."),
  connected: gettext("Call connected."),
  lost: gettext("Connection lost. Reconnecting."),
  peerLost: gettext("The other side's connection dropped."),
  ended: gettext("Call ended."),
  refused: gettext("Call refused."),
};

/** A consultant's status (`online`, `busy`, `away`, `offline`) in words. */
export function statusText(status) {
  const words = {
    online: pgettext("presence", "online"),
    busy: gettext("in a call"),
    away: pgettext("presence", "away"),
    offline: pgettext("presence", "offline"),
  };
  return words[status] || status;
}

/** "3 waiting": the length of a consultant's queue. */
export function waitingText(count) {
  return interpolate(ngettext("%(count)s waiting", "%(count)s waiting", count), { count });
}

/** A duration of `seconds` as m:ss (h:mm:ss past an hour), digits in the page's locale. */
export function clockText(seconds) {
  const whole = Math.max(0, Math.floor(seconds));
  const two = (n) => n.toLocaleString(document.documentElement.lang, { minimumIntegerDigits: 2 });
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const rest = two(whole % 60);
  if (hours) return `${hours.toLocaleString(document.documentElement.lang)}:${two(minutes)}:${rest}`;
  return `${minutes.toLocaleString(document.documentElement.lang)}:${rest}`;
}
