/**
 * The consultant flags the call that just ended (docs/protocol.md, `flag`):
 * audio bad, video bad, dropped or other. Offered until the next call starts.
 */

import { write } from "./callview.js";
import { gettext } from "./i18n.js";

export class CallFlag {
  constructor(form, { signaling }) {
    this.form = form;
    this.signaling = signaling;
    this.choice = form.querySelector("[data-call-flag-choice]");
    this.result = form.querySelector("[data-call-flag-result]");
    this.consultation = null;
    signaling.on("caller", () => this.hide());
    signaling.on("flag_noted", () => write(this.result, gettext("Flagged. Thank you.")));
    signaling.on("error", (frame) => {
      if (frame.code === "feedback_refused" && !this.form.hidden) write(this.result, frame.message);
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!this.consultation) return;
      this.signaling.send("flag", { consultation: this.consultation, flag: this.choice.value });
    });
  }

  /** The call `consultation` has ended: it may be flagged. */
  offer(consultation) {
    if (!consultation) return;
    this.consultation = consultation;
    write(this.result, "");
    this.form.hidden = false;
  }

  hide() {
    this.consultation = null;
    this.form.hidden = true;
  }
}
