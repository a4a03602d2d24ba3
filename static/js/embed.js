/* Consult: one script tag puts a consultation button on any page (docs/embed.md).
 * Its parts live in an open shadow root and the top layer, out of the page's CSS;
 * the call runs in a frame of the app's origin. */
(() => {
  "use strict";
  const script = document.currentScript;
  if (!script || window.Consult) return; // one widget per page
  const APP = new URL(script.src, location.href).origin;
  const HOST = location.origin;
  const PROTOCOL = 1;
  const KEY = "consult.embed";
  const ACTIVE = ["queued", "connecting", "in-call", "reconnecting"];
  const SLUG_RE = /^[\w-]{1,50}$/;
  const data = script.dataset;
  // An attribute with a junk value counts as absent.
  const pick = (value, ok, fallback) => {
    const text = typeof value === "string" ? value.trim() : "";
    return text && ok(text) ? text : fallback;
  };
  const SLUG = pick(data.consultant, (v) => SLUG_RE.test(v), "");
  const LANG = pick(data.lang, (v) => /^[a-z]{2,3}(-[a-z0-9]{2,8})?$/i.test(v), "");
  // Its words in the page's language come with the site check.
  const WORDS = { label: "Talk to a consultant" };
  const label = () => pick(data.label, (v) => v.length <= 60, WORDS.label);
  const CORNER = pick(data.corner, (v) => /^(bottom|top)-(left|right)$/.test(v), "bottom-right");
  const COLOR = pick(data.color, (v) => /^#([0-9a-f]{3}){1,2}$/i.test(v), "#1d5fd1");
  const TOP = typeof HTMLElement.prototype.showPopover === "function";

  // Black or white text, whichever reads better on the colour (YIQ brightness).
  const hex = COLOR.length === 4 ? COLOR.replace(/\w/g, "$&$&") : COLOR;
  const [r, g, b] = [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16));
  const INK = r * 299 + g * 587 + b * 114 > 150000 ? "#111" : "#fff";
  const [V, H] = CORNER.split("-");
  const CSS = `:host{all:initial!important;display:block!important;position:fixed!important;
z-index:2147483647!important;inset:auto!important;width:0!important;height:0!important}
*{box-sizing:border-box}[hidden]{display:none!important}
.launcher,.panel{position:fixed;inset:auto;${V}:20px;${H}:20px;margin:0;border:0;
z-index:2147483647;font:600 16px/1.25 system-ui,sans-serif;box-shadow:0 4px 24px #0005}
.launcher,.bar{background:${COLOR};color:${INK}}
.launcher{padding:14px 22px;border-radius:99px;cursor:pointer;max-width:calc(100vw - 40px);
overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
button:focus-visible{outline:3px solid #fb4;outline-offset:2px}
.panel{width:min(420px,calc(100vw - 40px));height:min(680px,calc(100vh - 40px));padding:0;
border-radius:12px;background:#fff;color:#123;display:flex;flex-direction:column;overflow:hidden}
.bar{display:flex;align-items:center;padding:6px 6px 6px 16px}
.title{flex:1;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.x{font:inherit;font-size:24px;width:40px;height:40px;border:0;background:none;color:inherit;cursor:pointer}
.confirm{padding:12px 16px;background:#fff1d6;color:#530;font-weight:400}.confirm p{margin:0 0 10px}
.confirm button{font:inherit;padding:8px 14px;margin-right:8px;border:1px solid #889;
border-radius:8px;background:#fff;color:#123}
iframe{flex:1;width:100%;min-height:0;border:0;display:block}
@media (max-width:600px){.panel{inset:0;width:100vw;height:100dvh;border-radius:0}}`;

  let root, launcher, panel, confirmBar, frame, position;
  let allowed = null; // null until the app has answered
  let wantOpen = false;
  let consultant = SLUG;
  let state = "idle"; // the frame's call-state
  let phase = "none"; // what the host page was last told

  // Storage may be refused: then a reload starts afresh.
  const recall = () => {
    try {
      return JSON.parse(sessionStorage.getItem(KEY)) || {};
    } catch {
      return {};
    }
  };

  function emit(name, detail = {}) {
    const event = new CustomEvent(`consult:${name}`, { bubbles: true, detail });
    (script.isConnected ? script : window).dispatchEvent(event);
  }

  function show(el) {
    el.hidden = false;
    if (TOP && !el.matches(":popover-open")) el.showPopover();
  }

  function hide(el) {
    if (TOP && el.matches(":popover-open")) el.hidePopover();
    el.hidden = true;
  }

  function remember() {
    const saved = ACTIVE.includes(state) ? { slug: consultant, open: Boolean(frame) } : null;
    try {
      sessionStorage.setItem(KEY, JSON.stringify(saved));
    } catch {}
  }

  function frameUrl() {
    const query = new URLSearchParams({ host: HOST });
    if (LANG) query.set("lang", LANG);
    const path = consultant ? `call/${encodeURIComponent(consultant)}/` : "";
    return `${APP}/embed/${path}?${query}`;
  }

  function open() {
    if (!allowed) {
      wantOpen = allowed === null;
      return;
    }
    if (!frame) {
      frame = document.createElement("iframe");
      frame.setAttribute("data-testid", "consult-frame");
      frame.title = label();
      frame.allow = "camera; microphone; autoplay; display-capture";
      frame.src = frameUrl();
      frame.addEventListener("load", () => {
        if (frame) frame.contentWindow.postMessage({ consult: PROTOCOL, type: "sync" }, APP);
      });
      panel.append(frame);
    }
    confirmBar.hidden = true;
    show(panel);
    hide(launcher);
    remember();
    frame.focus();
  }

  function close(force = false) {
    if (!root || panel.hidden) return;
    if (!force && ACTIVE.includes(state)) {
      confirmBar.querySelector("p").textContent = state === "queued" ? WORDS.queued : WORDS.inCall;
      confirmBar.hidden = false;
      confirmBar.querySelector(".stay").focus();
      return;
    }
    if (frame) frame.remove();
    frame = null;
    confirmBar.hidden = true;
    hide(panel);
    show(launcher);
    if (!ACTIVE.includes(state)) {
      consultant = SLUG;
      state = "idle";
    }
    remember();
    launcher.focus();
  }

  // A state report from our frame becomes the host page's events.
  function onMessage(event) {
    if (!frame || event.source !== frame.contentWindow || event.origin !== APP) return;
    const m = event.data;
    if (!m || m.consult !== PROTOCOL || m.type !== "state" || typeof m.state !== "string") return;
    const next = m.state;
    const place = Number.isInteger(m.position) && m.position > 0 ? m.position : null;
    if (typeof m.consultant === "string" && SLUG_RE.test(m.consultant)) consultant = m.consultant;
    const live = phase === "queued" || phase === "in-call";
    if (next === "queued") {
      if (phase !== "queued") emit("queued", { position: place });
      else if (place !== position) emit("position", { position: place });
      phase = "queued";
      position = place;
    } else if (next === "in-call" && phase !== "in-call") {
      phase = "in-call";
      emit("in-call");
    } else if ((next === "ended" || next === "refused") && live) {
      phase = next;
      emit(next);
    } else if (next === "idle" && live) {
      // Left the queue, or the place expired while closed.
      phase = "none";
      emit("ended", { reason: "left" });
    }
    state = next;
    if (!ACTIVE.includes(state)) confirmBar.hidden = true;
    remember();
  }

  function build() {
    root = document.createElement("div");
    root.setAttribute("data-consult-widget", "");
    const shadow = root.attachShadow({ mode: "open" });
    // A constructed sheet, not <style>: the host page's CSP may forbid inline styles.
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    shadow.adoptedStyleSheets = [sheet];
    // Fixed markup only: words from attributes go in as text.
    shadow.innerHTML = `<button type="button" class="launcher" part="launcher" data-testid="consult-launcher" hidden></button>
<div class="panel" part="panel" role="dialog" hidden>
<div class="bar"><span class="title"></span><button type="button" class="x">\u00d7</button></div>
<div class="confirm" role="alertdialog" hidden><p></p><button type="button" class="stay"></button><button type="button" class="leave"></button></div>
</div>`;
    launcher = shadow.querySelector(".launcher");
    panel = shadow.querySelector(".panel");
    confirmBar = shadow.querySelector(".confirm");
    launcher.textContent = label();
    panel.setAttribute("aria-label", label());
    shadow.querySelector(".title").textContent = label();
    shadow.querySelector(".x").ariaLabel = WORDS.close;
    for (const k of ["stay", "leave"]) confirmBar.querySelector(`.${k}`).textContent = WORDS[k];
    if (TOP) launcher.popover = panel.popover = "manual";
    launcher.addEventListener("click", open);
    shadow.querySelector(".x").addEventListener("click", () => close());
    confirmBar.querySelector(".stay").addEventListener("click", () => {
      confirmBar.hidden = true;
      frame?.focus();
    });
    confirmBar.querySelector(".leave").addEventListener("click", () => close(true));
    panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") close();
    });
    window.addEventListener("message", onMessage);
  }

  function start() {
    allowed = true;
    build();
    document.body.append(root);
    show(launcher);
    // Reloaded while waiting or in a call: back to the same place.
    const saved = recall();
    if (typeof saved.slug === "string" && SLUG_RE.test(saved.slug)) consultant = saved.slug;
    if (saved.open || wantOpen) open();
  }

  window.Consult = Object.freeze({ open: () => open(), close: () => close(), version: PROTOCOL });

  // Is this origin allowed? The browser names it (CORS), so no page passes for another.
  const probe = document.createElement("script");
  probe.src = `${APP}/embed/site.js?lang=${LANG}`;
  probe.crossOrigin = "anonymous";
  probe.async = true;
  probe.addEventListener("consult:words", (event) => Object.assign(WORDS, event.detail));
  probe.addEventListener("consult:site", (event) => {
    probe.remove();
    if (event.detail && event.detail.allowed === true) {
      if (document.body) start();
      else document.addEventListener("DOMContentLoaded", start, { once: true });
    } else {
      allowed = false;
      console.warn(
        `Consult: ${HOST} is not allowed to embed ${APP}, so no consultation ` +
          `button is shown. See docs/embed.md, "Allowing a site".`,
      );
    }
  });
  probe.addEventListener("error", () => {
    allowed = false;
    console.warn(`Consult: could not reach ${APP}; no button is shown.`);
  });
  (document.head || document.documentElement).append(probe);
})();
