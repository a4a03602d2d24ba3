/**
 * "Your turn is near": a waiting caller may look at another tab or app. When
 * they choose (never before: the permission prompt follows their click), the
 * page notifies them and marks its tab title once they reach the chosen place.
 */

import { gettext, interpolate } from "./i18n.js";

export class TurnNear {
  /**
   * `form` holds the place picker, the `notify-me` button and the e-mail
   * field; `signaling` carries the `notify` frame for the e-mail.
   */
  constructor(form, { consultantName, signaling }) {
    this.form = form;
    this.place = form.querySelector("[data-notify-place]");
    this.result = form.querySelector("[data-notify-result]");
    this.email = form.querySelector("[data-notify-email]");
    form.querySelector("[data-notify-email-send]").addEventListener("click", () => {
      if (!this.email.checkValidity() || !this.email.value.trim()) {
        this.result.textContent = gettext("Please enter an e-mail address.");
        return;
      }
      signaling.send("notify", { email: this.email.value.trim(), place: Number(this.place.value) || 1 });
    });
    signaling.on("notify_set", (frame) => {
      this.result.textContent =
        frame.place === 1
          ? gettext("We will e-mail you once when you are next.")
          : gettext("We will e-mail you once when you are second.");
    });
    this.consultantName = consultantName;
    this.baseTitle = document.title;
    this.wanted = null;
    this.told = false;
    // Without notifications in this browser, the e-mail is still offered.
    form.querySelector('[data-testid="notify-me"]').hidden = !("Notification" in window);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.ask();
    });
  }

  async ask() {
    if (!("Notification" in window)) return;
    const permission = await Notification.requestPermission();
    if (permission !== "granted") {
      this.result.textContent = gettext("Notifications are blocked for this site; the tab title will still change.");
    } else {
      this.result.textContent = gettext("We will tell you when your turn is near.");
    }
    this.wanted = Number(this.place.value) || 1;
    this.told = false;
    if (this.position) this.update(this.position);
  }

  /** The caller's place changed (1 = next). */
  update(position) {
    this.position = position;
    if (this.wanted === null || this.told || position > this.wanted) return;
    this.told = true;
    const text =
      position === 1
        ? gettext("You are next")
        : interpolate(gettext("You are number %(position)s in the queue"), { position });
    document.title = `(${text}) ${this.baseTitle}`;
    if ("Notification" in window && Notification.permission === "granted") {
      // The name is plain text in a notification: no markup is interpreted.
      const body = interpolate(gettext("%(name)s will be with you soon."), { name: this.consultantName });
      new Notification(text, { body, tag: "consult-turn" });
    }
  }

  /** Not waiting any more: back to the plain title, nothing pending. */
  reset() {
    document.title = this.baseTitle;
    this.wanted = null;
    this.told = false;
    this.position = null;
    this.result.textContent = "";
  }
}
