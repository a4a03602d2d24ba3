/**
 * The liveness check on the caller's page (docs/protocol.md, "The liveness
 * check"): the server asks a long waiter `still_there` {answer_within_seconds};
 * a dialog asks the person, and its button answers `here`. Without an answer
 * in time the server ends the ticket with `expired`, which the page handles.
 *
 * The dialog is an alertdialog, not modal: the rest of the page stays usable
 * (leaving the queue is an answer too). It takes the focus when it opens and
 * gives it back when it closes; a chime calls back someone who looked away.
 */

import { interpolate, ngettext } from "./i18n.js";
import { chime } from "./chime.js";

// Frames after which no question is open any more.
const SETTLED = ["noted", "expired", "accepted", "resumed", "refused", "cancelled", "hangup"];

export class StillThere {
  /** `dialog` holds `[data-still-here]` (the answer) and `[data-still-there-left]`. */
  constructor({ signaling, dialog }) {
    this.signaling = signaling;
    this.dialog = dialog;
    this.button = dialog.querySelector("[data-still-here]");
    this.left = dialog.querySelector("[data-still-there-left]");
    this.timer = null;
    this.returnFocus = null;
    signaling.on("still_there", (frame) => this.ask(frame.answer_within_seconds));
    for (const type of SETTLED) signaling.on(type, () => this.close());
    signaling.on("socket:close", () => this.close());
    this.button.addEventListener("click", () => this.answer());
  }

  ask(seconds) {
    const deadline = Date.now() + Math.max(0, Number(seconds) || 0) * 1000;
    const tick = () => {
      const left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
      this.left.textContent = interpolate(ngettext("%(left)s second", "%(left)s seconds", left), { left });
    };
    tick();
    clearInterval(this.timer);
    this.timer = setInterval(tick, 1000);
    if (this.dialog.hidden) {
      this.returnFocus = document.activeElement;
      this.dialog.hidden = false;
      chime([660, 660]);
    }
    this.button.focus();
  }

  answer() {
    // If the socket is away, the server asks again once it is back.
    this.signaling.send("here");
    this.close();
  }

  close() {
    clearInterval(this.timer);
    this.timer = null;
    if (this.dialog.hidden) return;
    this.dialog.hidden = true;
    const back = this.returnFocus;
    this.returnFocus = null;
    if (back && back.isConnected && typeof back.focus === "function") back.focus();
  }
}
