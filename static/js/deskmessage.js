/**
 * The desk's word to its queue: one short message that every waiting caller
 * sees on their page until it is replaced or cleared (`queue_message`).
 */

import { gettext, interpolate, ngettext } from "./i18n.js";

export class QueueMessageForm {
  /** `form` holds the input and the send and clear buttons; `signaling` the desk's socket. */
  constructor(form, signaling) {
    this.input = form.querySelector('[data-testid="queue-message-input"]');
    this.result = form.querySelector("[data-queue-message-result]");
    this.signaling = signaling;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send(this.input.value.trim());
    });
    form.querySelector("[data-queue-message-clear]").addEventListener("click", () => {
      this.input.value = "";
      this.send("");
    });
    signaling.on("hello", (frame) => {
      this.input.value = frame.queue_message || "";
    });
    signaling.on("queue_message_set", (frame) => {
      this.result.textContent = frame.text
        ? interpolate(
            ngettext(
              "Shown to %(count)s waiting caller, and to those who join.",
              "Shown to %(count)s waiting callers, and to those who join.",
              frame.waiting,
            ),
            { count: frame.waiting },
          )
        : gettext("Message cleared.");
    });
    signaling.on("error", (frame) => {
      if (frame.code === "too_fast") this.result.textContent = gettext("Wait a minute before changing the message again.");
    });
  }

  send(text) {
    this.result.textContent = "";
    this.signaling.send("queue_message", { text });
  }
}
