/**
 * The caller's page: preview, join with an offer, wait, talk, end; a reload
 * or a dropped socket resumes with the token kept in sessionStorage.
 */

import { focusLost, focusOn, polite, urgent } from "./announce.js";
import { CallbackForm } from "./callback.js";
import { callerText } from "./callertext.js";
import { CallView, isolate, write } from "./callview.js";
import { chime, unlockSound } from "./chime.js";
import { ConsentPrompt } from "./consent.js";
import { FeedbackForm } from "./feedback.js";
import { gettext, interpolate } from "./i18n.js";
import { JoinProof } from "./joinproof.js";
import { showOthers } from "./others.js";
import { PeerState } from "./peerstate.js";
import { PreCheck } from "./precheck.js";
import { Preview } from "./preview.js";
import { Seat } from "./seat.js";
import { CallerSession } from "./session.js";
import { retryDelayMs, Signaling } from "./signaling.js";
import { StillThere } from "./stillthere.js";
import { TurnNear } from "./turnnear.js";
import { Watchdog } from "./watchdog.js";
import { CUES, statusText } from "./words.js";

const page = document.querySelector("[data-call-page]");
const slug = page.dataset.slug;
const consultantName = isolate(page.dataset.consultantName);
const TEXT = callerText(consultantName);
const named = (format) => interpolate(format, { name: consultantName });
const seat = new Seat(slug);

const $ = (selector) => page.querySelector(selector);
const stateLine = $('[data-testid="call-state"]');
const form = $("[data-join-form]");
const nameInput = $('[data-testid="caller-name"]');
const takeBack = $("[data-take-back]");
const reasonInput = $('[data-testid="caller-reason"]');
const audioOnlyBox = $('[data-testid="caller-audio-only"]');
const joinButton = $('[data-testid="caller-join"]');
const cameraSelect = $("[data-camera-select]");
const micSelect = $("[data-mic-select]");
const joinError = $("[data-join-error]");
const waiting = $("[data-waiting]");
const positionText = $('[data-testid="queue-position"]');
const etaText = $("[data-eta]");
const queueLive = $('[data-testid="queue-live"]');
const ended = $("[data-ended]");
const inCallParts = page.querySelectorAll("[data-in-call]");
const presence = $("[data-presence]");
const callPanel = $("[data-call-panel]");

// Whether the server has said hello on the current socket.
let serverReady = false;
// Whether another tab took the place or call over (`taken_over`).
let takenOver = false;
// The consultants as the last `hello` or `consultants` push listed them.
let lobby = [];
// Whether the ended panel lists the other consultants: then it follows each push,
// so a colleague who comes online after the refusal still shows.
let othersShown = false;

const view = new CallView(page, { otherName: () => consultantName });
const signaling = new Signaling("/ws/call/");
// A busy queue's proof of work, and the long waiter's "are you still there?".
const proof = new JoinProof({ signaling, box: $("[data-join-proof]") });
new StillThere({ signaling, dialog: $("[data-still-there]") });
const consent = new ConsentPrompt({ root: $("[data-recording]"), signaling });
const turnNear = new TurnNear($("[data-notify]"), {
  consultantName: page.dataset.consultantName,
  signaling,
});
const feedback = new FeedbackForm($("[data-feedback]"), { signaling });
const callback = new CallbackForm($("[data-callback]"), {
  signaling,
  slug,
  caller: () => ({ name: nameInput.value.trim(), reason: reasonInput.value.trim() }),
  errors: TEXT.joinErrors,
});
const preview = new Preview({
  view,
  cameraSelect,
  micSelect,
  errorLine: $("[data-media-error]"),
  audioOnlyBox,
  // Once joined, the call keeps the choice it was joined with.
  audioOnly: () => (session.phase === "idle" ? audioOnlyBox.checked : seat.audioOnly),
});
const session = new CallerSession({
  signaling,
  view,
  onState: (state) => setState(state),
  reconnectMedia: async () => {
    await preview.settled();
    const stream = preview.stream;
    if (!stream || stream.getTracks().every((t) => t.readyState === "ended")) await preview.open();
    return { stream: preview.stream, audioOnly: seat.audioOnly };
  },
});

// The pre-call check, the other side's state and the watchdog (docs/connectivity.md).
function offerCallback() {
  callback.show(true);
  callback.details.open = true;
}
const precheck = new PreCheck({
  root: $("[data-precheck]"),
  signaling,
  preview,
  onAudioOnly: () => {
    audioOnlyBox.checked = true;
    preview.open();
  },
  onCallback: offerCallback,
});
const peerState = new PeerState({ root: page, session, signaling, view, otherName: () => consultantName });
new Watchdog({
  session,
  signaling,
  element: $('[data-testid="watchdog-step"]'),
  drives: true,
  answered: ["accepted", "resumed"],
  onAudioOnly: () => peerState.goAudioOnly(),
  onCallback: offerCallback,
});
// Set when a call failed to connect: the next `queued` says why the caller waits again.
let connectFailed = false;

// --- what the caller sees -----------------------------------------------------

function setState(state, text) {
  const before = stateLine.dataset.state;
  stateLine.dataset.state = state;
  write(stateLine, text || TEXT.states[state]);
  form.hidden = state !== "idle";
  waiting.hidden = state !== "queued";
  ended.hidden = state !== "ended" && state !== "refused";
  callback.show(["idle", "ended", "refused"].includes(state));
  const calling =
    session.phase === "call" && ["connecting", "in-call", "reconnecting"].includes(state);
  for (const part of inCallParts) part.hidden = !calling;
  // Until a call, the caller's own camera fills the frame.
  callPanel.classList.toggle("preview", !calling);
  updateJoinButton();
  if (state !== before) moveFocus(state);
}

/** After each step, focus goes where the next thing to do is, never to a hidden part. */
function moveFocus(state) {
  if (state === "queued") focusOn(waiting);
  else if (state === "connecting" && session.phase === "call") focusOn($("[data-call-controls]"));
  if (state === "in-call") urgent(CUES.connected);
  else if (state === "ended" || state === "refused") focusOn($("[data-ended-title]"));
  else if (state === "idle" && focusLost()) focusOn(nameInput);
}

function updateJoinButton() {
  joinButton.disabled = !serverReady || session.phase !== "idle";
}

function show(element, text) {
  write(element, text);
  element.hidden = !text;
}

// The last wait range the server sent, worded again when the consultant's status changes.
let waitRange = null;

function showPosition(position, range) {
  positionText.textContent = String(position);
  turnNear.update(position);
  waitRange = range;
  write(etaText, TEXT.wait(range, presence.dataset.status));
  polite(queueLive, `${TEXT.place(position)} ${etaText.textContent}`);
}

function showEnd(state, title, text) {
  finish();
  takeBack.hidden = true;
  $("[data-others]").hidden = true;
  othersShown = false;
  write($("[data-ended-title]"), title);
  write($("[data-ended-text]"), text);
  setState(state);
}

// --- the end of a call -------------------------------------------------------------

function finish() {
  turnNear.reset();
  consent.reset();
  session.end();
  seat.forget();
  // Closing the connection stopped the camera; the preview opens it again.
  preview.stop();
}

// --- joining -------------------------------------------------------------------

// The join sent again after a busy server's `try_later`.
let joinRetry = null;

async function join(event) {
  event.preventDefault();
  unlockSound();
  show(joinError, "");
  const name = nameInput.value.trim();
  if (!name) {
    show(joinError, gettext("Please enter your name."));
    nameInput.focus();
    return;
  }
  if (!serverReady || session.phase !== "idle") return;
  const audioOnly = audioOnlyBox.checked;
  seat.remember({ name, reason: reasonInput.value, audioOnly, token: null });
  const reason = reasonInput.value.trim();
  const fields = { consultant: slug, name, reason, audio_only: audioOnly, ...precheck.joinFields() };
  if (moveToken) fields.move_token = moveToken;
  const joining = session.join(fields, async () => {
    await preview.settled();
    const stream = preview.stream;
    if (!stream || (!audioOnly && stream.getVideoTracks().length === 0)) await preview.open();
    return { stream: preview.stream, audioOnly: seat.audioOnly };
  });
  updateJoinButton();
  await joining;
}

/** Back to the form, with a fresh preview, to join again. */
function backToForm(stateText, errorText) {
  finish();
  othersShown = false;
  show(joinError, errorText);
  setState("idle", stateText);
  preview.open();
}

// --- frames from the server ---------------------------------------------------------

signaling.on("socket:open", () => {
  if (seat.token && !takenOver) {
    resume();
  } else if (session.phase === "joining") {
    backToForm("", gettext("The connection dropped while joining. Please join again."));
  }
});

signaling.on("socket:close", () => {
  serverReady = false;
  updateJoinButton();
  if (session.phase === "queued" || session.phase === "call") {
    setState("reconnecting");
    urgent(CUES.lost);
  }
});

function showPresence(consultants) {
  lobby = consultants;
  const me = consultants.find((c) => c.slug === slug);
  const status = me ? me.status : "offline";
  presence.textContent = statusText(status);
  presence.dataset.status = status;
  if (session.phase === "queued") write(etaText, TEXT.wait(waitRange, status));
  if (othersShown) showOthers($("[data-others]"), lobby, slug, moveTo);
}

signaling.on("hello", (frame) => {
  serverReady = true;
  updateJoinButton();
  showPresence(frame.consultants || []);
  // Moved here from a refusal: join at once, with the place in line carried over.
  if (moveToken && session.phase === "idle") form.requestSubmit();
});
signaling.on("consultants", (frame) => showPresence(frame.consultants || []));

signaling.on("queued", (frame) => {
  seat.remember({ token: frame.token, moveToken: null });
  moveToken = null;
  clearTimeout(joinRetry);
  show(joinError, "");
  session.queued();
  showPosition(frame.position, frame.wait_range);
  showConsultantMessage(frame.consultant_message || "");
  setState("queued");
  $("[data-connect-failed]").hidden = !connectFailed;
  if (connectFailed) offerCallback();
  connectFailed = false;
});

signaling.on("position", (frame) => showPosition(frame.position, frame.wait_range));

/** Word from the consultant to their queue, as text; "" clears it. */
function showConsultantMessage(text) {
  const element = $('[data-testid="consultant-message"]');
  write(element, text ? `${consultantName}: ${text}` : "");
  element.hidden = !text;
}
signaling.on("consultant_message", (frame) => showConsultantMessage(frame.text));

signaling.on("accepted", async (frame) => {
  chime([523, 659, 784]);
  view.keepChat(frame.consultation);
  turnNear.reset();
  const connecting = session.accepted(frame.answer);
  setState("connecting");
  urgent(CUES.turn);
  await connecting;
});

signaling.on("resumed", async (frame) => {
  view.keepChat(frame.consultation);
  setState("connecting", gettext("Back in the call: reconnecting media…"));
  await session.reconnect();
});

// `peer` tells how the consultant's socket fares.
signaling.on("peer", async (frame) => {
  if (frame.state === "reconnecting") {
    setState("reconnecting", named(gettext("%(name)s's connection dropped; waiting for them to come back…")));
    urgent(CUES.peerLost);
  } else if (frame.state === "back" && session.phase === "call") {
    setState("connecting", named(gettext("%(name)s is back: reconnecting media…")));
    await session.reconnect();
  }
});

signaling.on("refused", (frame) => {
  const reason = frame.reason
    ? interpolate(gettext("Reason: %(reason)s"), { reason: isolate(frame.reason) })
    : gettext("No reason was given.");
  showEnd("refused", named(gettext("%(name)s could not take your call")), reason);
  urgent(CUES.refused);
  othersShown = true;
  refusedMoveToken = frame.move_token || null;
  showOthers($("[data-others]"), lobby, slug, moveTo);
});

signaling.on("hangup", (frame) => {
  if (frame.reason === "failed") return retryAfterFailure(frame);
  let text = named(gettext("%(name)s ended the call."));
  if (frame.reason === "disconnected") text = named(gettext("%(name)s's connection was lost."));
  else if (frame.by === "caller") text = gettext("You ended the call.");
  else if (frame.by === "operator") text = gettext("The call was ended by the service's staff.");
  showEnd("ended", gettext("The call has ended"), text);
  urgent(CUES.ended);
  feedback.offer();
});

/** The call never connected: back to the head of the queue with the retry token. */
function retryAfterFailure(frame) {
  finish();
  moveToken = frame.move_token || null;
  connectFailed = true;
  setState("failed", gettext("The call could not connect."));
  if (moveToken) form.requestSubmit();
}

// A consultant handed this waiting caller to a colleague: the place (same
// token, same join time) continues on the colleague's page.
signaling.on("transferred", (frame) => {
  const target = frame.consultant.slug;
  if (frame.move_token) {
    // Transferred during a call: this call is over, and a new place waits in
    // the colleague's queue at the original join time.
    finish();
    new Seat(target).remember({ ...seat.recall(), token: null, moveToken: frame.move_token });
  } else {
    new Seat(target).remember({ ...seat.recall(), moveToken: null });
  }
  sessionStorage.removeItem(seat.key);
  location.assign(callPageOf(target));
});

signaling.on("cancelled", () => backToForm(gettext("You left the queue.")));
signaling.on("expired", () =>
  backToForm(
    gettext("Nobody answered whether you were still there, so your place was given up. You can join again."),
  ),
);

signaling.on("error", (frame) => {
  if (frame.code === "taken_over") {
    elsewhere();
  } else if (frame.code === "bad_token" && session.phase === "call") {
    showEnd("ended", gettext("The call has ended"), gettext("The call ended while you were disconnected."));
  } else if (frame.code === "bad_token") {
    backToForm(gettext("Your place in the queue has expired. You can join again."));
  } else if (frame.code === "try_later" && session.phase === "joining") {
    // The server is saturated: keep the offer and the camera, say so, and
    // join again after its hint (docs/protocol.md, "Admission").
    // Said once: the alert keeps its text through the retries (a screen reader
    // would announce it again on every refill) until the join is answered.
    if (joinError.textContent !== TEXT.joinErrors.try_later) show(joinError, TEXT.joinErrors.try_later);
    clearTimeout(joinRetry);
    // A socket that dropped meanwhile sends nothing; its reconnect takes the
    // page back to the form ("socket:open").
    joinRetry = setTimeout(() => session.joinAgain(), retryDelayMs(frame.retry_after));
  } else if (frame.challenge && session.phase === "joining") {
    // A busy queue: solve its proof of work and join again (joinproof.js).
    proof.answer(frame).then((sent) => sent || backToForm("", TEXT.joinErrors[frame.code]));
  } else if (session.phase === "joining") {
    if (frame.code === "cannot_move") {
      moveToken = null;
      seat.remember({ moveToken: null });
    }
    backToForm("", TEXT.joinErrors[frame.code] || frame.message || gettext("Could not join."));
  } else {
    console.warn("server error", frame.code, frame.message);
  }
});

// --- the buttons ----------------------------------------------------------------

form.addEventListener("submit", join);
for (const control of [audioOnlyBox, cameraSelect, micSelect]) {
  control.addEventListener("change", () => preview.open());
}
$("[data-check-media]").addEventListener("click", () => preview.open());

$('[data-testid="caller-cancel"]').addEventListener("click", () => signaling.send("cancel"));

$('[data-testid="hangup"]').addEventListener("click", () => {
  signaling.send("hangup");
  showEnd("ended", gettext("The call has ended"), gettext("You ended the call."));
  feedback.offer();
});

/** Another tab of this browser resumed the place or call: it goes on there. */
function elsewhere() {
  // Until the caller asks, this tab leaves the place to the other one, even
  // when its own socket reconnects.
  takenOver = true;
  const inCall = session.phase === "call";
  session.end();
  preview.stop();
  const title = inCall
    ? gettext("Your call continues in another tab")
    : gettext("Your place continues in another tab");
  write($("[data-ended-title]"), title);
  write($("[data-ended-text]"), gettext("You can go on there, or continue here instead."));
  takeBack.hidden = false;
  // The status line too: not "The call has ended.", which it is not.
  setState("ended", `${title}.`);
  takeBack.focus();
}

takeBack.addEventListener("click", () => {
  takenOver = false;
  takeBack.hidden = true;
  resume();
});

function resume() {
  setState("reconnecting", gettext("Getting your place back…"));
  signaling.send("resume", { token: seat.token });
}

$("[data-again]").addEventListener("click", async () => {
  setState("idle");
  await preview.open();
  nameInput.focus();
});

// --- moving to another consultant ------------------------------------------------

// The `move_token` of the last refusal: a move to another queue keeps the join time.
let refusedMoveToken = null;

/**
 * Another consultant's call page, beside this one: in the consulting bot's
 * frame that is the embedded page, which alone may be framed.
 */
function callPageOf(target) {
  const url = new URL(`../${encodeURIComponent(target)}/`, location.href);
  url.search = location.search;
  // Sent on by the business: followed in the frame whichever consultants the
  // site lists (consult/embed_views.py).
  if (url.pathname.startsWith("/embed/")) url.searchParams.set("follow", "1");
  return url.href;
}

/** Go to `target`'s call page, which joins at once carrying the place in line. */
function moveTo(target) {
  new Seat(target).remember({
    name: nameInput.value.trim(),
    reason: reasonInput.value,
    audioOnly: audioOnlyBox.checked,
    token: null,
    moveToken: refusedMoveToken,
  });
  location.assign(callPageOf(target));
}

// --- start ---------------------------------------------------------------------

// Back from the link of a "your turn is near" e-mail: a fresh token for the seat.
if (page.dataset.resumeToken) seat.remember({ token: page.dataset.resumeToken });
const saved = seat.recall();
// Set when this page was opened by a move from a refusal (see moveTo).
let moveToken = saved.moveToken || null;
nameInput.value = saved.name || "";
reasonInput.value = saved.reason || "";
audioOnlyBox.checked = Boolean(saved.audioOnly);
if (saved.token) {
  session.waitInQueue();
  setState("reconnecting", gettext("Getting your place back…"));
} else {
  setState("idle");
}
preview.open();
signaling.connect();
