/**
 * Inside the widget's frame (/embed/…): tells the host page how the call goes,
 * by postMessage to the host's origin only, and keeps links inside the
 * embedded pages.
 *
 * It watches the call page's own hooks (`call-state`'s data-state and
 * `queue-position`), so the call page needs no change. Only the state, the
 * place in the queue and the consultant's slug leave the frame: no name, no
 * reason, nothing the caller typed.
 */

// A browser may deny a frame on another site its storage (privacy settings, or
// Chromium with storage partitioning off). The call page keeps its seat in
// sessionStorage: then it gets this page's memory instead, so the call still
// works, and a reload forgets the place. This module runs before the page's own.
try {
  window.sessionStorage.getItem("consult");
} catch {
  const memory = new Map();
  const standIn = {
    getItem: (key) => (memory.has(String(key)) ? memory.get(String(key)) : null),
    setItem: (key, value) => memory.set(String(key), String(value)),
    removeItem: (key) => memory.delete(String(key)),
    clear: () => memory.clear(),
    key: (index) => [...memory.keys()][index] ?? null,
    get length() {
      return memory.size;
    },
  };
  Object.defineProperty(window, "sessionStorage", { value: standIn, configurable: true });
}

const hostData = document.getElementById("consult-embed-host");
// The server writes the host's origin only when it is on the allow-list.
const host = hostData ? JSON.parse(hostData.textContent) : "";
const stateLine = document.querySelector('[data-testid="call-state"]');
const positionText = document.querySelector('[data-testid="queue-position"]');
const page = document.querySelector("[data-call-page]");
const slug = page ? page.dataset.slug : null;
const PROTOCOL = 1;

let lastSent = "";

function snapshot() {
  const state = stateLine ? stateLine.dataset.state : "picker";
  const number = positionText ? Number.parseInt(positionText.textContent, 10) : NaN;
  const position = state === "queued" && number > 0 ? number : null;
  return { consult: PROTOCOL, type: "state", state, position, consultant: slug };
}

function tell(force = false) {
  if (!host || window.parent === window) return;
  const message = snapshot();
  const key = JSON.stringify(message);
  if (key === lastSent && !force) return;
  lastSent = key;
  // The target origin: the browser delivers it only if the parent is that page.
  window.parent.postMessage(message, host);
}

const observer = new MutationObserver(() => tell());
if (stateLine) observer.observe(stateLine, { attributes: true, attributeFilter: ["data-state"] });
if (positionText) observer.observe(positionText, { childList: true, characterData: true, subtree: true });

// The host may ask for the state again; anyone else is not listened to.
window.addEventListener("message", (event) => {
  if (!host || event.source !== window.parent || event.origin !== host) return;
  const data = event.data;
  if (data && data.consult === PROTOCOL && data.type === "sync") tell(true);
});

// --- links stay in the frame: the app's other pages refuse to be framed -------

function carried() {
  const query = new URLSearchParams();
  const params = new URLSearchParams(location.search);
  for (const name of ["host", "lang"]) {
    if (params.get(name)) query.set(name, params.get(name));
  }
  const text = query.toString();
  return text ? `?${text}` : "";
}

/** The embedded page standing in for an app page, or null if there is none. */
function embeddedPath(url) {
  if (url.origin !== location.origin) return null;
  const call = url.pathname.match(/^\/call\/([^/]+)\/$/);
  if (call) return `/embed/call/${call[1]}/`;
  if (url.pathname === "/") return "/embed/";
  return null;
}

document.addEventListener("click", (event) => {
  const link = event.target instanceof Element ? event.target.closest("a[href]") : null;
  if (!link || event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const url = new URL(link.href, location.href);
  if (url.origin === location.origin && url.pathname.startsWith("/embed/")) return;
  const path = embeddedPath(url);
  if (path === null) {
    // Anything else opens beside the host page, never inside the frame.
    link.target = "_blank";
    link.rel = "noopener";
    return;
  }
  event.preventDefault();
  location.assign(path + carried());
});

// The first report once the page's own modules have set its state (a frame
// reopened with a place starts "reconnecting", not "idle").
document.addEventListener("DOMContentLoaded", () => tell());
