/**
 * The desk's word to its queue: one short message that every waiting caller
 * sees on their page until it is replaced or cleared (`queue_message`).
 */

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
        ? `Shown to ${frame.waiting} waiting caller${frame.waiting === 1 ? "" : "s"}, and to those who join.`
        : "Message cleared.";
    });
    signaling.on("error", (frame) => {
      if (frame.code === "too_fast") this.result.textContent = "Wait a minute before changing the message again.";
    });
  }

  send(text) {
    this.result.textContent = "";
    this.signaling.send("queue_message", { text });
  }
}
