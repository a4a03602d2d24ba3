/**
 * What the caller's page says about its states, its wait and a failed join,
 * for the consultant named `consultantName` (already `isolate`d).
 */

export function callerText(consultantName) {
  return {
    states: {
      idle: "Ready when you are.",
      queued: "Waiting for your turn.",
      connecting: "It is your turn: connecting…",
      "in-call": `In a call with ${consultantName}.`,
      reconnecting: "Reconnecting…",
      ended: "The call has ended.",
      refused: "Your call was refused.",
    },
    joinErrors: {
      unknown_consultant: "This consultant is not available.",
      consultant_unavailable: `${consultantName} is offline right now. Try again later.`,
      queue_full: `${consultantName}'s queue is full right now. Try again later.`,
      too_many_from_address:
        "Too many people are waiting from your network right now. Try again when one of them has been served.",
      too_many_joins: "Too many joins in a short time. Please wait a moment and try again.",
      challenge_required: "Your browser could not finish its check before joining. Please try again.",
      challenge_failed: "Your browser could not finish its check before joining. Please try again.",
      cannot_move: "Your place in line could not be carried over (it is too old or was used already). You can join at the back of the queue.",
    },
    /**
     * The wait range in rounded words (docs/waits.md). `range` is the frame's
     * `wait_range` ({low_seconds, high_seconds} or null); `status` the
     * consultant's, which tells "away" from "not known yet".
     */
    wait(range, status) {
      if (!range) {
        if (status === "away" || status === "offline") {
          return `${consultantName} is not taking calls right now; you keep your place.`;
        }
        return "Estimated wait: not known yet.";
      }
      if (range.high_seconds === 0) return "Estimated wait: any moment now.";
      if (range.high_seconds <= 60) return "Estimated wait: under a minute.";
      return `Estimated wait: ${minutesBetween(range.low_seconds, range.high_seconds)}.`;
    },
  };
}

/** "about 5–10 minutes": whole minutes, in steps of five beyond a quarter hour. */
function minutesBetween(lowSeconds, highSeconds) {
  const step = highSeconds > 15 * 60 ? 5 : 1;
  const low = Math.floor(lowSeconds / 60 / step) * step;
  const high = Math.max(1, Math.ceil(highSeconds / 60 / step) * step);
  if (low === high) return `about ${high} minute${high === 1 ? "" : "s"}`;
  if (low === 0) return `up to ${high} minutes`;
  return `about ${low}–${high} minutes`;
}
