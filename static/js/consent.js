/**
 * Recording consent on the caller's page (docs/recording.md): the prompt that
 * `record_ask` brings (its text is the server's, the same words the receipt
 * keeps), the answer, the indicator while the recording runs, and the
 * caller's own stop. `RecordingIndicator` is shared with the desk.
 */

import { write } from "./callview.js";
import { gettext } from "./i18n.js";

/** The `recording-indicator`, in the DOM only while a recording runs. */
export class RecordingIndicator {
  constructor(root) {
    this.slot = root.querySelector("[data-recording-slot]");
    this.template = root.querySelector("template[data-recording-indicator]");
  }

  show(on) {
    if (!on) {
      this.slot.replaceChildren();
    } else if (!this.slot.firstElementChild) {
      this.slot.append(this.template.content.cloneNode(true));
    }
  }
}

export class ConsentPrompt {
  constructor({ root, signaling }) {
    this.signaling = signaling;
    this.prompt = root.querySelector('[data-testid="consent-prompt"]');
    this.text = root.querySelector("[data-consent-text]");
    this.stopButton = root.querySelector('[data-testid="record-stop"]');
    this.note = root.querySelector("[data-recording-note]");
    this.indicator = new RecordingIndicator(root);
    this.asked = null;
    root.querySelector('[data-testid="consent-accept"]').addEventListener("click", () => this.answer(true));
    root.querySelector('[data-testid="consent-decline"]').addEventListener("click", () => this.answer(false));
    this.stopButton.addEventListener("click", () => {
      signaling.send("record_stop");
      this.stopButton.disabled = true;
    });
    signaling.on("record_ask", (frame) => this.ask(frame));
    signaling.on("recording", (frame) => this.changed(frame));
  }

  ask(frame) {
    this.asked = frame.recording;
    write(this.text, frame.text);
    write(this.note, "");
    this.prompt.hidden = false;
    this.prompt.querySelector('[data-testid="consent-accept"]').focus();
  }

  answer(accept) {
    if (this.asked === null) return;
    this.signaling.send("record_consent", { recording: this.asked, accept });
    this.asked = null;
    this.prompt.hidden = true;
  }

  changed(frame) {
    const on = frame.state === "on";
    this.indicator.show(on);
    this.stopButton.hidden = !on;
    this.stopButton.disabled = false;
    if (frame.state === "stopped" || frame.state === "declined") {
      this.prompt.hidden = true;
      this.asked = null;
    }
    const notes = {
      on: gettext("This call is being recorded. You can stop the recording at any time."),
      declined: gettext("You declined: the call is not recorded."),
      stopped: gettext("The recording has stopped."),
    };
    write(this.note, notes[frame.state] || "");
  }

  /** The call is over: no prompt, no indicator. */
  reset() {
    this.asked = null;
    this.prompt.hidden = true;
    this.indicator.show(false);
    this.stopButton.hidden = true;
    write(this.note, "");
  }
}
