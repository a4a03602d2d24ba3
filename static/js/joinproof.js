/**
 * Proof of work for a join to a busy queue (docs/protocol.md, "Join limits"):
 * the server answers `join` with `error` `challenge_required` (or
 * `challenge_failed`) carrying an ALTCHA challenge; ALTCHA's own widget
 * (static/vendor/altcha, loaded only then) solves it in web workers, and the
 * same join goes again with the solution as `altcha`.
 *
 * The widget is the "external" build: its worker and styles are files of our
 * origin, so the page's Content Security Policy needs nothing more.
 */

const WIDGET = new URL("../vendor/altcha/altcha.js", import.meta.url);
const STYLES = new URL("../vendor/altcha/altcha.css", import.meta.url);
// Fresh challenges tried for one join before giving up.
const MAX_TRIES = 3;

let loading = null;

function loadWidget() {
  if (!loading) {
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = STYLES.href;
    document.head.append(link);
    loading = import(WIDGET.href);
  }
  return loading;
}

export class JoinProof {
  /** `box` is where the widget shows while it works. */
  constructor({ signaling, box }) {
    this.signaling = signaling;
    this.box = box;
    this.join = null;
    this.tries = 0;
    // The join to send again is the last one the page sent (with its offer).
    const send = signaling.send.bind(signaling);
    signaling.send = (type, data = {}) => {
      if (type === "join") {
        const { altcha: _solution, ...join } = data;
        this.join = join;
      }
      return send(type, data);
    };
    signaling.on("queued", () => this.reset());
    signaling.on("error", (frame) => frame.challenge || this.reset());
  }

  /**
   * Solve the challenge an `error` frame carries and send the join again;
   * false when there is nothing to send or it gave up.
   */
  async answer(frame) {
    if (!this.join || !frame.challenge || this.tries >= MAX_TRIES) {
      this.reset();
      return false;
    }
    this.tries += 1;
    const join = this.join;
    const solution = await this.solve(frame.challenge);
    if (!solution) {
      this.reset();
      return false;
    }
    return this.signaling.send("join", { ...join, altcha: solution });
  }

  async solve(challenge) {
    await loadWidget();
    const widget = document.createElement("altcha-widget");
    widget.setAttribute("challengejson", JSON.stringify(challenge));
    widget.setAttribute("auto", "onload");
    widget.setAttribute("hidefooter", "true");
    widget.setAttribute("name", "altcha");
    const solved = new Promise((resolve) => {
      widget.addEventListener("statechange", (event) => {
        const { state, payload } = event.detail || {};
        if (state === "verified") resolve(payload);
        else if (state === "error" || state === "expired") resolve(null);
      });
    });
    this.box.querySelector("[data-join-proof-widget]").replaceChildren(widget);
    this.box.hidden = false;
    return solved;
  }

  reset() {
    this.tries = 0;
    this.box.hidden = true;
    this.box.querySelector("[data-join-proof-widget]").replaceChildren();
  }
}
