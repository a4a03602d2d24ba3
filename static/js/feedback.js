/**
 * The caller's rating after a call (docs/protocol.md, `feedback`): offered
 * once the call ends, focused, sent once, skippable.
 */

import { write } from "./callview.js";
import { gettext } from "./i18n.js";

export class FeedbackForm {
  constructor(form, { signaling }) {
    this.form = form;
    this.signaling = signaling;
    this.rating = form.querySelector('[data-testid="feedback-rating"]');
    this.comment = form.querySelector('[data-testid="feedback-comment"]');
    this.send = form.querySelector('[data-testid="feedback-send"]');
    this.result = form.querySelector("[data-feedback-result]");
    // The consultation of the current or last call, from `accepted`/`resumed`.
    this.consultation = null;
    signaling.on("accepted", (frame) => this.track(frame.consultation));
    signaling.on("resumed", (frame) => this.track(frame.consultation));
    signaling.on("feedback_noted", () => this.done(gettext("Thank you for your feedback.")));
    signaling.on("error", (frame) => {
      if (frame.code === "feedback_refused" && !this.form.hidden) this.done(frame.message);
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    form.querySelector("[data-feedback-skip]").addEventListener("click", () => {
      this.form.hidden = true;
    });
  }

  track(consultation) {
    this.consultation = consultation;
    this.form.hidden = true;
  }

  /** The call has ended: ask for a rating, once per consultation. */
  offer() {
    if (!this.consultation) return;
    this.form.hidden = false;
    this.rating.disabled = this.comment.disabled = this.send.disabled = false;
    this.rating.value = "";
    this.comment.value = "";
    write(this.result, "");
    this.rating.focus();
  }

  submit() {
    const rating = Number(this.rating.value);
    if (!rating) {
      write(this.result, gettext("Choose a rating from 1 to 5, or skip."));
      this.rating.focus();
      return;
    }
    this.send.disabled = true;
    this.signaling.send("feedback", {
      consultation: this.consultation,
      rating,
      comment: this.comment.value.trim(),
    });
  }

  done(text) {
    this.consultation = null;
    this.rating.disabled = this.comment.disabled = this.send.disabled = true;
    write(this.result, text);
  }
}
