/**
 * The consultant's desk: presence, the live queue with arrival alerts, and the
 * call (the consultant answers the caller's offer; after a reload the desk
 * gets `resumed` and answers the new offer the caller then sends).
 */

import { focusOn, urgent } from "./announce.js";
import { CallView, isolate, write } from "./callview.js";
import { chime, unlockOnFirstGesture, unlockSound } from "./chime.js";
import { CallbackList } from "./deskcallbacks.js";
import { QueueMessageForm } from "./deskmessage.js";
import { CallFlag } from "./deskflag.js";
import { DeskQueue } from "./deskqueue.js";
import { gettext, interpolate, ngettext } from "./i18n.js";
import { openBest, stopStream } from "./media.js";
import { DeskRecording } from "./recorder.js";
import { PeerState } from "./peerstate.js";
import { ConsultantSession } from "./session.js";
import { Signaling } from "./signaling.js";
import { Watchdog } from "./watchdog.js";
import { CUES } from "./words.js";

const page = document.querySelector("[data-desk-page]");
const $ = (selector) => page.querySelector(selector);
const stateLine = $('[data-testid="call-state"]');
const statusSelect = $('[data-testid="desk-status"]');
const alertsButton = $("[data-alerts]");
const deskError = $("[data-desk-error]");
const acceptNext = $('[data-testid="desk-accept-next"]');
const inCallParts = page.querySelectorAll("[data-in-call]");
const current = $("[data-current]");
const arrival = $("[data-arrival]");
const BASE_TITLE = document.title;
const RESUME_WAIT_MS = 3000;

let stream = null;
let mediaTask = Promise.resolve();
// When the desk reconnects during a call, the server says `resumed` right
// after `queue` if the call still exists; if it does not, the call is over.
let expectResume = false;
let resumeTimer = null;
let firstQueue = true;

const signaling = new Signaling("/ws/desk/");
new QueueMessageForm($("[data-queue-message]"), signaling);
new CallbackList($("[data-callbacks]"), signaling);
const callFlag = new CallFlag($("[data-call-flag]"), { signaling });
const queue = new DeskQueue({
  list: $('[data-testid="desk-queue"]'),
  template: document.getElementById("queue-item"),
  count: $("[data-queue-count]"),
  empty: $("[data-queue-empty]"),
  onAccept: (ticket) => {
    showError("");
    signaling.send("accept", { ticket });
  },
  onRefuse: (ticket, reason) => {
    showError("");
    signaling.send("refuse", { ticket, reason });
  },
  onTransfer: (ticket, to, note) => {
    showError("");
    signaling.send("transfer", { ticket, to, note });
  },
});
const view = new CallView(page, { otherName: () => callerName(gettext("Caller")) });
const recording = new DeskRecording({ root: $("[data-recording]"), signaling, view });
const session = new ConsultantSession({
  signaling,
  view,
  onState: (state) => {
    setState(state);
    recording.media(state);
  },
  answerMedia: async (video) => {
    await openCallMedia(video);
    return stream;
  },
});

// The caller's state and the watchdog (docs/connectivity.md); the caller's page drives ICE restarts.
const peerState = new PeerState({ root: page, session, signaling, view, otherName: () => callerName("Caller") });
new Watchdog({
  session,
  signaling,
  element: $('[data-testid="watchdog-step"]'),
  drives: false,
  answered: ["caller", "resumed"],
  onAudioOnly: () => peerState.goAudioOnly(),
});

/** The name of the caller in the call, or `fallback` when there is none. */
function callerName(fallback) {
  return session.caller ? isolate(session.caller.name) : fallback;
}

// --- what the consultant sees ---------------------------------------------------

const STATE_TEXT = {
  idle: gettext("Ready for the next caller."),
  connecting: gettext("Connecting to the caller…"),
  "in-call": gettext("In a call."),
  reconnecting: gettext("Reconnecting…"),
  ended: gettext("The call has ended. Ready for the next caller."),
};
const named = (format, name) => interpolate(format, { name });

let stateText = "";

function setState(state, text) {
  const before = stateLine.dataset.state;
  stateLine.dataset.state = state;
  stateText = text || STATE_TEXT[state];
  write(stateLine, stateText);
  const busy = session.caller !== null;
  for (const part of inCallParts) part.hidden = !busy;
  current.hidden = !busy;
  acceptNext.disabled = busy || queue.length === 0;
  queue.setBusy(busy);
  if (state === before) return;
  // The call's own controls once it starts; a dropped call is said at once.
  if (state === "connecting" && busy) focusOn($("[data-call-controls]"));
  if (state === "in-call") urgent(CUES.connected);
}

function showError(text) {
  write(deskError, text);
  deskError.hidden = !text;
}

// --- the queue -------------------------------------------------------------------

function showQueue(callers) {
  const arrivals = queue.render(callers);
  document.title = callers.length ? `(${callers.length}) ${BASE_TITLE}` : BASE_TITLE;
  setState(stateLine.dataset.state, stateText);
  if (arrivals.length && !firstQueue) announce(arrivals);
  if (!callers.length) arrival.hidden = true;
  firstQueue = false;
}

/** A new caller: a sound, a line to see, the same line said, and a desktop notification when away. */
function announce(arrivals) {
  chime([880, 660, 880]);
  const names = arrivals.map((c) => isolate(c.name)).join(", ");
  const text = interpolate(
    ngettext("A caller is waiting: %(names)s.", "%(count)s new callers are waiting: %(names)s.", arrivals.length),
    { names, count: arrivals.length },
  );
  write(arrival, text);
  arrival.hidden = false;
  const count = arrivals.length;
  urgent(interpolate(ngettext("New caller waiting.", "%(count)s new callers waiting.", count), { count }));
  if ("Notification" in window && Notification.permission === "granted" && document.hidden) {
    new Notification(gettext("A caller is waiting"), { body: names, tag: "consult-queue" });
  }
}

// --- the call --------------------------------------------------------------------

function openCallMedia(video) {
  mediaTask = mediaTask.then(async () => {
    stopStream(stream);
    [stream] = await openBest({ video });
    view.useStream(stream);
  });
  return mediaTask;
}

// The caller's reason, kept in the tab for the call's life: `resumed` after a
// reload of the desk does not carry it.
const reasonKey = (consultation) => `consult.reason.${consultation}`;

/**
 * Drop what this tab kept of calls other than `current` (null: of any call):
 * a call that ended while the tab was away left its chat and reason behind.
 */
function forgetOtherCalls(current) {
  const kept = current === null ? [] : [reasonKey(current), `consult.chat.${current}`];
  for (const key of Object.keys(sessionStorage)) {
    const ofACall = key.startsWith("consult.reason.") || key.startsWith("consult.chat.");
    if (ofACall && !kept.includes(key)) sessionStorage.removeItem(key);
  }
}

function startCall(caller) {
  session.begin(caller);
  view.reset();
  forgetOtherCalls(caller.consultation);
  view.keepChat(caller.consultation);
  const key = reasonKey(caller.consultation);
  const reason = caller.reason || sessionStorage.getItem(key) || "";
  sessionStorage.setItem(key, reason);
  $("[data-current-name]").textContent = caller.name;
  $("[data-current-reason]").textContent = reason;
  setState("connecting");
}

function endCall(text) {
  if (session.caller) callFlag.offer(session.caller.consultation);
  if (session.caller) sessionStorage.removeItem(reasonKey(session.caller.consultation));
  recording.callEnded();
  session.end();
  stopStream(stream);
  stream = null;
  view.useStream(null);
  setState("ended", text);
  // The next thing to do, or, with no one waiting, the queue that will show them.
  focusOn(acceptNext.disabled ? $("#queue-title") : acceptNext);
}

// The caller of the call goes to a colleague's queue, keeping their join time.
const callTransfer = $("[data-call-transfer]");
if (callTransfer) {
  callTransfer.querySelector('[data-testid="transfer"]').addEventListener("click", () => {
    showError("");
    const to = callTransfer.querySelector("[data-transfer-to]").value;
    const note = callTransfer.querySelector("[data-transfer-note]").value.trim();
    signaling.send("transfer_call", { to, note });
  });
}

// --- frames from the server ---------------------------------------------------------

signaling.on("hello", (frame) => {
  // A call still held comes back with `resumed` right after `queue`; past
  // that, nothing this tab kept of a call is current.
  setTimeout(() => session.caller || forgetOtherCalls(null), RESUME_WAIT_MS);
  statusSelect.disabled = false;
  statusSelect.value = frame.status === "away" ? "away" : "online";
  showError("");
  if (!session.caller) setState(stateLine.dataset.state === "ended" ? "ended" : "idle");
  expectResume = session.caller !== null;
});

signaling.on("queue", (frame) => {
  showQueue(frame.callers || []);
  if (expectResume) {
    expectResume = false;
    resumeTimer = setTimeout(() => {
      endCall(gettext("The call ended while the desk was disconnected. Ready for the next caller."));
    }, RESUME_WAIT_MS);
  }
});

signaling.on("caller", async (frame) => {
  startCall(frame);
  await session.answer(frame);
});

signaling.on("resumed", (frame) => {
  clearTimeout(resumeTimer);
  // The caller will offer a new connection on hearing that we are back.
  const { ticket, name } = frame.caller;
  if (session.caller && session.caller.consultation === frame.consultation) {
    setState("connecting", gettext("Back in the call: reconnecting media…"));
    return;
  }
  startCall({ consultation: frame.consultation, ticket, name, reason: "" });
  setState("connecting", gettext("Back in the call: reconnecting media…"));
});

// `peer` tells how the caller's socket fares.
signaling.on("peer", (frame) => {
  const caller = session.caller;
  if (!caller) return;
  if (frame.state === "reconnecting") {
    setState(
      "reconnecting",
      named(gettext("%(name)s's connection dropped; waiting for them to come back…"), isolate(caller.name)),
    );
    urgent(CUES.peerLost);
  } else if (frame.state === "back") {
    setState("connecting", named(gettext("%(name)s is back: reconnecting media…"), isolate(caller.name)));
  }
});

signaling.on("transferred", (frame) => {
  if (callTransfer) callTransfer.open = false;
  endCall(
    interpolate(gettext("%(name)s was transferred to %(colleague)s."), {
      name: callerName(gettext("The caller")),
      colleague: isolate(frame.consultant.name),
    }),
  );
});

signaling.on("hangup", (frame) => {
  if (frame.reason === "failed") {
    endCall();
    setState("failed", gettext("The call could not connect. The caller is back at the head of your queue."));
    return;
  }
  const name = callerName(gettext("The caller"));
  let text = named(gettext("%(name)s ended the call. Ready for the next caller."), name);
  if (frame.reason === "disconnected") {
    text = named(gettext("%(name)s's connection was lost. Ready for the next caller."), name);
  } else if (frame.by === "operator") {
    text = gettext("An operator ended the call. Ready for the next caller.");
  }
  endCall(text);
  urgent(CUES.ended);
});

const DESK_ERRORS = {
  queue_empty: gettext("No one is waiting."),
  ticket_gone: gettext("That caller is no longer waiting."),
  busy: gettext("Finish the current call first."),
  callback_gone: gettext("That callback was handled already."),
  bad_transfer: gettext("That colleague cannot take callers now (offline, or their queue is full)."),
  too_fast: "", // shown by the queue message form
  // The server is saturated: the socket closes and reopens after its hint.
  try_later: gettext("The service is very busy right now; the desk opens by itself in a moment."),
};

signaling.on("error", (frame) => {
  if (frame.code === "taken_over") {
    takenOver();
    return;
  }
  showError(DESK_ERRORS[frame.code] ?? (frame.message || gettext("Something went wrong.")));
});

/**
 * A newer desk tab took the call. This tab stops here, on the `taken_over`
 * error itself: its 4409 close may never arrive (a network cut on this side
 * ends in a bare drop), and reconnecting would take the call back.
 */
function takenOver() {
  signaling.close();
  statusSelect.disabled = true;
  endCall(gettext("This desk was opened in another tab or window; the call goes on there."));
  callFlag.hide(); // the call goes on: nothing to flag yet
  showError(gettext("This desk was opened in another tab. Reload this page to use the desk here."));
}

// Logging out closes this desk's socket from the server side too (4401): the
// logout's own redirect is where the page goes then.
let leaving = false;
for (const logout of document.querySelectorAll('form[action$="/logout/"]')) {
  logout.addEventListener("submit", () => {
    leaving = true;
  });
}

signaling.on("socket:close", ({ code }) => {
  statusSelect.disabled = true;
  if (leaving) return;
  if (code === 4401) {
    location.assign(`/accounts/login/?next=${encodeURIComponent(location.pathname)}`);
  } else if (code === 4403) {
    showError(gettext("This account is not a consultant."));
  } else if (code === 4409) {
    takenOver();
  } else if (code === 4410) {
    endCall(gettext("Staff set you offline."));
    showError(gettext("Staff set you offline from the operations board. Reload this page to open the desk again."));
  } else {
    const state = session.caller ? "reconnecting" : stateLine.dataset.state;
    setState(state, gettext("Reconnecting to the desk…"));
    if (session.caller) urgent(CUES.lost);
  }
});

// --- the buttons ----------------------------------------------------------------

acceptNext.addEventListener("click", () => {
  showError("");
  signaling.send("accept");
});

statusSelect.addEventListener("change", () => signaling.send("status", { status: statusSelect.value }));

$('[data-testid="hangup"]').addEventListener("click", async () => {
  await recording.finish(); // the last seconds of a recording reach the server first
  signaling.send("hangup");
  endCall(named(gettext("You ended the call with %(name)s. Ready for the next caller."), callerName(gettext("the caller"))));
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
setState("idle", gettext("Connecting to the desk…"));
signaling.connect();
