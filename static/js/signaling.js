/**
 * The page's one WebSocket to the server: JSON frames in and out, reconnecting
 * with back-off when it drops.
 *
 * Handlers are registered per frame `type`; two lifecycle events that no server
 * frame can carry are emitted too: `socket:open` (on every (re)connect, so the
 * page can send `resume`) and `socket:close` (with the close `code`).
 */

const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 10_000;
// Some proxies cut a WebSocket that stays silent for a minute.
const KEEPALIVE_MS = 25_000;
// Close codes after which reconnecting cannot help (see the contract), or
// would take the desk back from the tab that just took it over (4409), or
// online again after staff set the consultant offline (4410).
const FINAL_CODES = new Set([4401, 4403, 4409, 4410, 4429]);
// "Try again": a database outage, or a desk turned away by admission control.
const TRY_AGAIN = 4013;

/**
 * Milliseconds to wait before trying again after `try_later`: the server's
 * `retry_after` (seconds) plus up to half as much again, so that the pages it
 * turned away do not all come back in the same second.
 */
export function retryDelayMs(retryAfterSeconds) {
  const hint = 1000 * Math.max(1, Number(retryAfterSeconds) || 1);
  return hint + (Math.random() * hint) / 2;
}

export function socketUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  // The server words its error messages in the page's language.
  const lang = encodeURIComponent(document.documentElement.lang || "");
  return `${scheme}//${location.host}${path}${lang ? `?lang=${lang}` : ""}`;
}

export class Signaling {
  constructor(path) {
    this.url = socketUrl(path);
    this.handlers = new Map();
    this.socket = null;
    this.attempt = 0;
    this.stopped = false;
    this.retryTimer = null;
    this.keepalive = null;
    // A busy server's `try_later` before it closed: when to reconnect.
    this.hintedDelay = null;
  }

  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, []);
    this.handlers.get(type).push(fn);
    return this;
  }

  connect() {
    this.stopped = false;
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.attempt = 0;
      clearInterval(this.keepalive);
      this.keepalive = setInterval(() => this.send("ping"), KEEPALIVE_MS);
      this.emit("socket:open", { type: "socket:open" });
    });
    socket.addEventListener("message", (event) => this.receive(event.data));
    socket.addEventListener("close", (event) => this.dropped(socket, event.code));
  }

  send(type, data = {}) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify({ ...data, type }));
    return true;
  }

  close() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.keepalive);
    if (this.socket) this.socket.close(1000);
    this.socket = null;
  }

  get open() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  receive(raw) {
    let frame;
    try {
      frame = JSON.parse(raw);
    } catch {
      return;
    }
    if (!frame || typeof frame.type !== "string" || frame.type.startsWith("socket:")) {
      return;
    }
    // A try_later hint is for the close that follows it (a refused desk,
    // 4013); a join or callback turned away keeps its socket, and a later drop
    // of that socket reconnects at the usual pace.
    if (frame.type === "error" && frame.code === "try_later") {
      this.hintedDelay = retryDelayMs(frame.retry_after);
    } else {
      this.hintedDelay = null;
    }
    this.emit(frame.type, frame);
  }

  emit(type, frame) {
    for (const fn of this.handlers.get(type) || []) {
      try {
        fn(frame);
      } catch (error) {
        console.error(`handler for ${type} failed`, error);
      }
    }
  }

  dropped(socket, code) {
    if (socket !== this.socket) return;
    this.socket = null;
    clearInterval(this.keepalive);
    this.emit("socket:close", { type: "socket:close", code });
    const hinted = code === TRY_AGAIN ? this.hintedDelay : null;
    this.hintedDelay = null;
    if (this.stopped || FINAL_CODES.has(code)) return;
    if (hinted !== null) {
      this.retryTimer = setTimeout(() => this.connect(), hinted);
      return;
    }
    // Full jitter keeps a crowd of pages from reconnecting in step after a restart.
    const ceiling = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** this.attempt);
    this.attempt += 1;
    this.retryTimer = setTimeout(() => this.connect(), ceiling / 2 + Math.random() * ceiling / 2);
  }
}
