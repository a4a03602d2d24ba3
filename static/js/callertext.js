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
    },
    /** The wait estimate in words; `eta` in seconds, null while not online. */
    wait(eta) {
      if (eta === null || eta === undefined) {
        return `${consultantName} is not taking calls right now; you keep your place.`;
      }
      const minutes = Math.max(1, Math.round(eta / 60));
      return `Estimated wait: about ${minutes} minute${minutes === 1 ? "" : "s"}.`;
    },
  };
}
