/**
 * "Call me back instead": the caller leaves a phone number or an e-mail
 * address for the consultant's next free moment (`callback`).
 */

import { gettext } from "./i18n.js";
import { retryDelayMs } from "./signaling.js";

export class CallbackForm {
  /** `details` holds the form; `caller()` gives `{name, reason}` from the join form. */
  constructor(details, { signaling, slug, caller, errors }) {
    this.details = details;
    this.form = details.querySelector("[data-callback-form]");
    this.contact = details.querySelector("[data-callback-contact]");
    this.result = details.querySelector("[data-callback-result]");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      const { name, reason } = caller();
      const contact = this.contact.value.trim();
      if (!name || contact.length < 3) {
        this.result.textContent = !name
          ? gettext("Please enter your name in the form above first.")
          : gettext("Please enter a phone number or an e-mail address.");
        return;
      }
      this.pending = { consultant: slug, name, contact, reason };
      this.unsent = !signaling.send("callback", this.pending);
    });
    signaling.on("hello", () => {
      if (this.pending && this.unsent) this.unsent = !signaling.send("callback", this.pending);
    });
    signaling.on("callback_noted", () => {
      this.pending = false;
      this.contact.value = "";
      this.result.textContent = gettext("Thank you: you will be called back.");
    });
    signaling.on("error", (frame) => {
      if (!this.pending) return;
      if (frame.code === "try_later") {
        // The server is saturated: the same request again after its hint.
        const request = this.pending;
        this.result.textContent = gettext("The service is very busy right now; sending again in a moment.");
        const again = () => {
          // On a socket that dropped meanwhile it goes out after the next hello.
          if (this.pending === request) this.unsent = !signaling.send("callback", request);
        };
        setTimeout(again, retryDelayMs(frame.retry_after));
        return;
      }
      this.pending = false;
      this.result.textContent = errors[frame.code] || frame.message || gettext("That did not work.");
    });
  }

  /** Offered when not waiting or in a call. */
  show(visible) {
    this.details.hidden = !visible;
  }
}
