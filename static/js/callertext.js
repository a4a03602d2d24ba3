/**
 * What the caller's page says about its states, its wait and a failed join,
 * for the consultant named `consultantName` (already `isolate`d), in the
 * page's language.
 */

import { gettext, interpolate, ngettext } from "./i18n.js";

export function callerText(consultantName) {
  const named = (format) => interpolate(format, { name: consultantName });
  const retry = gettext("Your browser could not finish its check before joining. Please try again.");
  return {
    states: {
      idle: gettext("Ready when you are."),
      queued: gettext("Waiting for your turn."),
      connecting: gettext("It is your turn: connecting…"),
      "in-call": named(gettext("In a call with %(name)s.")),
      reconnecting: gettext("Reconnecting…"),
      ended: gettext("The call has ended."),
      refused: gettext("Your call was refused."),
    },
    joinErrors: {
      unknown_consultant: gettext("This consultant is not available."),
      consultant_unavailable: named(gettext("%(name)s is offline right now. Try again later.")),
      queue_full: named(gettext("%(name)s's queue is full right now. Try again later.")),
      too_many_from_address: gettext(
        "Too many people are waiting from your network right now. Try again when one of them has been served.",
      ),
      too_many_joins: gettext("Too many joins in a short time. Please wait a moment and try again."),
      try_later: gettext("The service is very busy right now. You will join by yourself in a moment."),
      challenge_required: retry,
      challenge_failed: retry,
      cannot_move: gettext(
        "Your place in line could not be carried over (it is too old or was used already). You can join at the back of the queue.",
      ),
    },
    /** "Your place: 3." in words, for the live region. */
    place(position) {
      if (position === 1) return gettext("You are next in the queue.");
      return interpolate(gettext("You are number %(position)s in the queue."), { position });
    },
    /**
     * The wait range in rounded words (docs/waits.md). `range` is the frame's
     * `wait_range` ({low_seconds, high_seconds} or null); `status` the
     * consultant's, which tells "away" from "not known yet".
     */
    wait(range, status) {
      if (!range) {
        if (status === "away" || status === "offline") {
          return named(gettext("%(name)s is not taking calls right now; you keep your place."));
        }
        return gettext("Estimated wait: not known yet.");
      }
      if (range.high_seconds === 0) return gettext("Estimated wait: any moment now.");
      if (range.high_seconds <= 60) return gettext("Estimated wait: under a minute.");
      return interpolate(gettext("Estimated wait: %(range)s."), {
        range: minutesBetween(range.low_seconds, range.high_seconds),
      });
    },
  };
}

/** "about 5–10 minutes": whole minutes, in steps of five beyond a quarter hour. */
function minutesBetween(lowSeconds, highSeconds) {
  const step = highSeconds > 15 * 60 ? 5 : 1;
  const low = Math.floor(lowSeconds / 60 / step) * step;
  const high = Math.max(1, Math.ceil(highSeconds / 60 / step) * step);
  if (low === high) {
    return interpolate(ngettext("about %(high)s minute", "about %(high)s minutes", high), { high });
  }
  if (low === 0) return interpolate(ngettext("up to %(high)s minute", "up to %(high)s minutes", high), { high });
  return interpolate(ngettext("about %(low)s–%(high)s minute", "about %(low)s–%(high)s minutes", high), {
    low,
    high,
  });
}
