/**
 * The consultant's desk: presence, the live queue with arrival alerts, and the
 * call (the consultant answers the caller's offer; after a reload the desk
 * gets `resumed` and answers the new offer the caller then sends).
 */

import { CallView } from "./callview.js";
import { chime, unlockOnFirstGesture, unlockSound } from "./chime.js";
import { openBest, stopStream } from "./media.js";
import { hasVideo, Peer } from "./peer.js";
import { Signaling } from "./signaling.js";

const page = document.querySelector("[data-desk-page]");
const $ = (selector) => page.querySelector(selector);
const stateLine = $('[data-testid="call-state"]');
const statusSelect = $('[data-testid="desk-status"]');
const alertsButton = $("[data-alerts]");
const deskError = $("[data-desk-error]");
const queueList = $('[data-testid="desk-queue"]');
const queueCount = $("[data-queue-count]");
const queueEmpty = $("[data-queue-empty]");
const acceptNext = $('[data-testid="desk-accept-next"]');
const inCallParts = page.querySelectorAll("[data-in-call]");
const current = $("[data-current]");
const itemTemplate = document.getElementById("queue-item");
const BASE_TITLE = document.title;
const RESUME_WAIT_MS = 3000;

const view = new CallView(page, { otherName: () => (call ? call.name : "Caller") });
const signaling = new Signaling("/ws/desk/");

let iceServers = [];
// The call in progress: {consultation, ticket, name, reason}, or null.
let call = null;
let peer = null;
let stream = null;
let mediaTask = Promise.resolve();
// When the desk reconnects during a call, the server says `resumed` right
// after `queue` if the call still exists; if it does not, the call is over.
let expectResume = false;
let resumeTimer = null;
let firstQueue = true;
const waitingSince = new Map();

// --- what the consultant sees ---------------------------------------------------

const STATE_TEXT = {
  idle: "Ready for the next caller.",
  connecting: "Connecting to the caller…",
  "in-call": "In a call.",
  reconnecting: "Reconnecting…",
  ended: "The call has ended. Ready for the next caller.",
};

function setState(state, text) {
  stateLine.dataset.state = state;
  stateLine.textContent = text || STATE_TEXT[state];
  const busy = call !== null;
  for (const part of inCallParts) part.hidden = !busy;
  current.hidden = !busy;
  acceptNext.disabled = busy || queueList.children.length === 0;
  for (const button of queueList.querySelectorAll('[data-testid="accept"]')) {
    button.disabled = busy;
  }
}

function showError(text) {
  deskError.textContent = text || "";
  deskError.hidden = !text;
}

function waitedText(seconds) {
  const minutes = Math.floor(seconds / 60);
  const rest = String(seconds % 60).padStart(2, "0");
  return `waiting ${minutes}:${rest}`;
}

function tick() {
  const now = performance.now();
  for (const item of queueList.children) {
    const since = waitingSince.get(item.dataset.ticket);
    if (since !== undefined) {
      item.querySelector("[data-waited]").textContent = waitedText(
        Math.max(0, Math.floor((now - since) / 1000)),
      );
    }
  }
}

// --- the queue -------------------------------------------------------------------

function renderQueue(callers) {
  const known = new Map([...queueList.children].map((item) => [item.dataset.ticket, item]));
  const arrivals = callers.filter((c) => !known.has(c.ticket));
  const items = callers.map((caller) => {
    const item = known.get(caller.ticket) || newItem(caller.ticket);
    fillItem(item, caller);
    return item;
  });
  // Reuse items so that a half-typed refusal reason survives a push.
  queueList.replaceChildren(...items);
  for (const ticket of waitingSince.keys()) {
    if (!callers.some((c) => c.ticket === ticket)) waitingSince.delete(ticket);
  }
  queueCount.textContent = String(callers.length);
  queueEmpty.hidden = callers.length > 0;
  document.title = callers.length ? `(${callers.length}) ${BASE_TITLE}` : BASE_TITLE;
  setState(stateLine.dataset.state, stateLine.textContent);
  if (arrivals.length && !firstQueue) announce(arrivals);
  firstQueue = false;
  tick();
}

function newItem(ticket) {
  const item = itemTemplate.content.firstElementChild.cloneNode(true);
  item.dataset.ticket = ticket;
  const reasonInput = item.querySelector("[data-refuse-reason]");
  reasonInput.id = `refuse-${ticket}`;
  item.querySelector("[data-refuse-label]").htmlFor = reasonInput.id;
  item.querySelector('[data-testid="accept"]').addEventListener("click", () => {
    showError("");
    signaling.send("accept", { ticket });
  });
  item.querySelector('[data-testid="refuse"]').addEventListener("click", () => {
    showError("");
    signaling.send("refuse", { ticket, reason: reasonInput.value.trim() });
  });
  return item;
}

function fillItem(item, caller) {
  item.querySelector("[data-name]").textContent = caller.name;
  // Each item's buttons say whom they act on, for screen readers.
  item.querySelector('[data-testid="accept"]').setAttribute("aria-label", `Accept ${caller.name}`);
  item.querySelector('[data-testid="refuse"]').setAttribute("aria-label", `Refuse ${caller.name}`);
  item.querySelector("[data-refuse-label]").textContent = `Reason for refusing ${caller.name}`;
  item.querySelector("[data-reason]").textContent = caller.reason || "";
  item.querySelector("[data-audio-only]").hidden = !caller.audio_only;
  item.querySelector("[data-reconnecting]").hidden = !caller.reconnecting;
  item.classList.toggle("reconnecting", Boolean(caller.reconnecting));
  waitingSince.set(caller.ticket, performance.now() - caller.waiting_seconds * 1000);
}

function announce(arrivals) {
  chime([880, 660, 880]);
  if ("Notification" in window && Notification.permission === "granted" && document.hidden) {
    const names = arrivals.map((c) => c.name).join(", ");
    new Notification("A caller is waiting", { body: names, tag: "consult-queue" });
  }
}

// --- the call --------------------------------------------------------------------

function openMedia(video) {
  mediaTask = mediaTask.then(async () => {
    stopStream(stream);
    [stream] = await openBest({ video });
    view.useStream(stream);
  });
  return mediaTask;
}

/** A connection that answers the caller's offer, with local media to match it. */
function makePeer() {
  const made = new Peer({
    iceServers,
    polite: true,
    signal: (message) => signal(made, message),
    onTrack: (track, remote) => view.showRemote(track, remote),
    onState: (state) => connectionChanged(made, state),
    onChannel: (channel) => view.setChannel(channel),
    beforeAnswer: async (offer) => {
      if (made.pc.getSenders().some((sender) => sender.track)) return;
      const video = hasVideo(offer.sdp);
      await openMedia(video);
      if (made.closed) return;
      made.attach(stream, video ? ["audio", "video"] : ["audio"]);
    },
  });
  return made;
}

function signal(from, { description, candidate }) {
  if (from !== peer) return;
  if (description) {
    signaling.send(description.type, { [description.type]: description });
  } else {
    signaling.send("ice", { candidate });
  }
}

function connectionChanged(from, state) {
  if (from !== peer) return;
  view.setConnection(state);
  if (state === "connected") setState("in-call");
  else if (state === "failed" || state === "disconnected") setState("reconnecting");
}

function startCall(details) {
  if (peer) peer.close();
  peer = null;
  call = details;
  view.reset();
  $("[data-current-name]").textContent = call.name;
  $("[data-current-reason]").textContent = call.reason || "";
  setState("connecting");
}

async function takeOffer(offer) {
  // An offer from a new connection (the caller reloaded) replaces ours.
  if (peer && !peer.sameRemote(offer)) {
    peer.close();
    peer = null;
  }
  if (!peer) peer = makePeer();
  await peer.receive({ description: offer });
}

function endCall(text) {
  if (peer) peer.close();
  peer = null;
  stopStream(stream);
  stream = null;
  call = null;
  view.setChannel(null);
  view.clearRemote();
  view.useStream(null);
  setState("ended", text);
  acceptNext.focus();
}

// --- frames from the server ---------------------------------------------------------

signaling.on("hello", (frame) => {
  iceServers = Array.isArray(frame.ice_servers) ? frame.ice_servers : [];
  statusSelect.disabled = false;
  statusSelect.value = frame.status === "away" ? "away" : "online";
  showError("");
  if (!call) setState(stateLine.dataset.state === "ended" ? "ended" : "idle");
  expectResume = call !== null;
});

signaling.on("queue", (frame) => {
  renderQueue(frame.callers || []);
  if (expectResume) {
    expectResume = false;
    resumeTimer = setTimeout(() => {
      endCall("The call ended while the desk was disconnected. Ready for the next caller.");
    }, RESUME_WAIT_MS);
  }
});

signaling.on("caller", async (frame) => {
  startCall(frame);
  await takeOffer(frame.offer);
  const answering = peer;
  for (const candidate of frame.candidates || []) {
    if (answering) await answering.receive({ candidate });
  }
});

signaling.on("resumed", (frame) => {
  clearTimeout(resumeTimer);
  // The caller will offer a new connection on hearing that we are back.
  const { ticket, name } = frame.caller;
  if (call && call.consultation === frame.consultation) {
    setState("connecting", "Back in the call: reconnecting media…");
    return;
  }
  startCall({ consultation: frame.consultation, ticket, name, reason: "" });
  setState("connecting", "Back in the call: reconnecting media…");
});

signaling.on("offer", (frame) => call && takeOffer(frame.offer));
signaling.on("answer", (frame) => peer && peer.receive({ description: frame.answer }));
signaling.on("ice", (frame) => peer && peer.receive({ candidate: frame.candidate }));

signaling.on("peer", (frame) => {
  if (!call) return;
  if (frame.state === "reconnecting") {
    setState("reconnecting", `${call.name}'s connection dropped; waiting for them to come back…`);
  } else if (frame.state === "back") {
    setState("connecting", `${call.name} is back: reconnecting media…`);
  }
});

signaling.on("hangup", (frame) => {
  const name = call ? call.name : "The caller";
  const text =
    frame.reason === "disconnected"
      ? `${name}'s connection was lost. Ready for the next caller.`
      : `${name} ended the call. Ready for the next caller.`;
  endCall(text);
});

const DESK_ERRORS = {
  queue_empty: "No one is waiting.",
  ticket_gone: "That caller is no longer waiting.",
  busy: "Finish the current call first.",
};

signaling.on("error", (frame) => {
  showError(DESK_ERRORS[frame.code] || frame.message || "Something went wrong.");
});

signaling.on("socket:close", ({ code }) => {
  statusSelect.disabled = true;
  if (code === 4401) {
    location.assign(`/accounts/login/?next=${encodeURIComponent(location.pathname)}`);
  } else if (code === 4403) {
    showError("This account is not a consultant.");
  } else {
    setState(call ? "reconnecting" : stateLine.dataset.state, "Reconnecting to the desk…");
  }
});

// --- the buttons ----------------------------------------------------------------

acceptNext.addEventListener("click", () => {
  showError("");
  signaling.send("accept");
});

statusSelect.addEventListener("change", () => signaling.send("status", { status: statusSelect.value }));

$('[data-testid="hangup"]').addEventListener("click", () => {
  signaling.send("hangup");
  endCall(`You ended the call with ${call ? call.name : "the caller"}. Ready for the next caller.`);
});

// Browsers allow sound only after a gesture on the page, and ask before
// desktop notifications: one button does both.
alertsButton.hidden = false;
alertsButton.addEventListener("click", async () => {
  unlockSound();
  if ("Notification" in window && Notification.permission === "default") {
    await Notification.requestPermission();
  }
  alertsButton.hidden = true;
});

// --- start ---------------------------------------------------------------------

unlockOnFirstGesture();
setInterval(tick, 1000);
setState("idle", "Connecting to the desk…");
signaling.connect();
