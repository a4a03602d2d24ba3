/**
 * The caller's page: preview, join with an offer, wait, talk, end; a reload
 * or a dropped socket resumes with the token kept in sessionStorage.
 */

import { CallView } from "./callview.js";
import { chime, unlockSound } from "./chime.js";
import { explain, listDevices, mediaSupported, openBest, stopStream } from "./media.js";
import { Peer } from "./peer.js";
import { Signaling } from "./signaling.js";

const page = document.querySelector("[data-call-page]");
const slug = page.dataset.slug;
const consultantName = page.dataset.consultantName;
const STORE_KEY = `consult.call.${slug}`;

const $ = (selector) => page.querySelector(selector);
const stateLine = $('[data-testid="call-state"]');
const form = $("[data-join-form]");
const nameInput = $('[data-testid="caller-name"]');
const reasonInput = $('[data-testid="caller-reason"]');
const audioOnlyBox = $('[data-testid="caller-audio-only"]');
const joinButton = $('[data-testid="caller-join"]');
const cameraSelect = $("[data-camera-select]");
const micSelect = $("[data-mic-select]");
const mediaError = $("[data-media-error]");
const joinError = $("[data-join-error]");
const waiting = $("[data-waiting]");
const positionText = $('[data-testid="queue-position"]');
const etaText = $("[data-eta]");
const ended = $("[data-ended]");
const inCallParts = page.querySelectorAll("[data-in-call]");
const presence = $("[data-presence]");
const callPanel = $("[data-call-panel]");

const view = new CallView(page, { otherName: () => consultantName });
const signaling = new Signaling("/ws/call/");

// "idle" | "joining" (offer made, join not yet answered) | "queued" | "call"
let phase = "idle";
let iceServers = [];
let stream = null;
let peer = null;
let offerReady = null;
let heldCandidates = [];
let mediaTask = Promise.resolve();
let reconnects = 0;
// Whether the server has said hello on the current socket.
let connected = false;

// --- what the caller sees -----------------------------------------------------

const STATE_TEXT = {
  idle: "Ready when you are.",
  queued: "Waiting for your turn.",
  connecting: "It is your turn: connecting…",
  "in-call": `In a call with ${consultantName}.`,
  reconnecting: "Reconnecting…",
  ended: "The call has ended.",
  refused: "Your call was refused.",
};

function setState(state, text) {
  stateLine.dataset.state = state;
  stateLine.textContent = text || STATE_TEXT[state];
  form.hidden = state !== "idle";
  waiting.hidden = state !== "queued";
  ended.hidden = state !== "ended" && state !== "refused";
  const calling = phase === "call" && ["connecting", "in-call", "reconnecting"].includes(state);
  for (const part of inCallParts) part.hidden = !calling;
  // Until a call, the caller's own camera fills the frame.
  callPanel.classList.toggle("preview", !calling);
  updateJoinButton();
}

function updateJoinButton() {
  joinButton.disabled = !connected || phase !== "idle";
}

function show(element, text) {
  element.textContent = text || "";
  element.hidden = !text;
}

function showPosition(position, eta) {
  positionText.textContent = String(position);
  if (eta === null || eta === undefined) {
    etaText.textContent = `${consultantName} is not taking calls right now; you keep your place.`;
  } else {
    const minutes = Math.max(1, Math.round(eta / 60));
    etaText.textContent = `Estimated wait: about ${minutes} minute${minutes === 1 ? "" : "s"}.`;
  }
}

function showEnd(state, title, text) {
  finish();
  $("[data-ended-title]").textContent = title;
  $("[data-ended-text]").textContent = text;
  setState(state);
}

// --- what the page remembers across a reload ------------------------------------

function remember(data) {
  const current = recall() || {};
  sessionStorage.setItem(STORE_KEY, JSON.stringify({ ...current, ...data }));
}

function recall() {
  try {
    return JSON.parse(sessionStorage.getItem(STORE_KEY));
  } catch {
    return null;
  }
}

function forget() {
  const saved = recall();
  // Keep the form's values for a next call; drop the place in the queue.
  if (saved) sessionStorage.setItem(STORE_KEY, JSON.stringify({ ...saved, token: null }));
}

// --- camera and microphone -------------------------------------------------------

/** (Re)open the camera and mic as the form asks; every opening goes through here. */
function preview() {
  mediaTask = mediaTask.then(openPreview).catch((error) => console.error(error));
  return mediaTask;
}

async function openPreview() {
  if (!mediaSupported()) return show(mediaError, explain(null));
  stopStream(stream);
  const audioOnly = phase === "idle" ? audioOnlyBox.checked : Boolean((recall() || {}).audioOnly);
  const [opened, error] = await openBest({
    video: !audioOnly,
    cameraId: cameraSelect.value,
    micId: micSelect.value,
  });
  stream = opened;
  view.useStream(stream);
  show(mediaError, error ? explain(error) : "");
  await fillDevices();
}

async function fillDevices() {
  const { cameras, mics } = await listDevices();
  fill(cameraSelect, cameras, stream && stream.getVideoTracks()[0]);
  fill(micSelect, mics, stream && stream.getAudioTracks()[0]);
  cameraSelect.disabled = audioOnlyBox.checked || cameras.length === 0;
}

function fill(select, devices, track) {
  const current = track ? track.getSettings().deviceId : select.value;
  select.replaceChildren(
    ...devices.map((device, index) => {
      const option = document.createElement("option");
      option.value = device.deviceId;
      option.textContent = device.label || `Device ${index + 1}`;
      return option;
    }),
  );
  if (current) select.value = current;
}

// --- the connection ---------------------------------------------------------------

function makePeer() {
  const made = new Peer({
    iceServers,
    polite: false,
    signal: (message) => signal(made, message),
    onTrack: (track, remote) => view.showRemote(track, remote),
    onState: (state) => connectionChanged(made, state),
  });
  const audioOnly = Boolean((recall() || {}).audioOnly);
  made.attach(stream, audioOnly ? ["audio"] : ["audio", "video"]);
  // The channel is made before the offer so that the offer carries it.
  view.setChannel(made.createChannel("chat"));
  return made;
}

function signal(from, { description, candidate }) {
  if (from !== peer) return;
  if (description) {
    if (phase === "joining" && offerReady) {
      offerReady(description);
      offerReady = null;
    } else {
      signaling.send(description.type, { [description.type]: description });
    }
  } else if (phase === "joining" || !signaling.open) {
    heldCandidates.push(candidate);
  } else {
    signaling.send("ice", { candidate });
  }
}

function flushCandidates() {
  for (const candidate of heldCandidates.splice(0)) signaling.send("ice", { candidate });
}

function connectionChanged(from, state) {
  if (from !== peer) return;
  view.setConnection(state);
  if (state === "connected") setState("in-call");
  else if (state === "failed" || state === "disconnected") setState("reconnecting");
}

/** A fresh connection, offered to the consultant (after a reload or their comeback). */
async function reconnectCall() {
  const generation = ++reconnects;
  if (peer) peer.close();
  peer = null;
  phase = "call";
  heldCandidates = [];
  await mediaTask;
  if (!stream || stream.getTracks().every((t) => t.readyState === "ended")) await preview();
  // A later comeback or an end of the call overtook this one.
  if (phase !== "call" || generation !== reconnects) return;
  peer = makePeer();
}

function finish() {
  if (peer) peer.close();
  peer = null;
  phase = "idle";
  offerReady = null;
  heldCandidates = [];
  forget();
  // Closing the connection stopped the camera; the preview opens it again.
  stopStream(stream);
  stream = null;
  view.useStream(null);
  view.setChannel(null);
  view.clearRemote();
}

// --- joining -------------------------------------------------------------------

async function join(event) {
  event.preventDefault();
  unlockSound();
  show(joinError, "");
  const name = nameInput.value.trim();
  if (!name) {
    show(joinError, "Please enter your name.");
    nameInput.focus();
    return;
  }
  if (!connected || phase !== "idle") return;
  phase = "joining";
  updateJoinButton();
  const audioOnly = audioOnlyBox.checked;
  remember({ name, reason: reasonInput.value, audioOnly, token: null });
  await mediaTask;
  if (!stream || (!audioOnly && stream.getVideoTracks().length === 0)) await preview();
  const offer = new Promise((resolve) => {
    offerReady = resolve;
  });
  peer = makePeer();
  signaling.send("join", {
    consultant: slug,
    name,
    reason: reasonInput.value.trim(),
    audio_only: audioOnly,
    offer: await offer,
  });
}

/** Back to the form, with a fresh preview, to join again. */
function backToForm(stateText, errorText) {
  finish();
  show(joinError, errorText);
  setState("idle", stateText);
  preview();
}

const JOIN_ERRORS = {
  unknown_consultant: "This consultant is not available.",
  consultant_unavailable: `${consultantName} is offline right now. Try again later.`,
  queue_full: `${consultantName}'s queue is full right now. Try again later.`,
};

// --- frames from the server ---------------------------------------------------------

signaling.on("socket:open", () => {
  const saved = recall();
  if (saved && saved.token) {
    setState("reconnecting", "Getting your place back…");
    signaling.send("resume", { token: saved.token });
  } else if (phase === "joining") {
    backToForm("", "The connection dropped while joining. Please join again.");
  }
});

signaling.on("socket:close", () => {
  connected = false;
  updateJoinButton();
  if (phase === "queued" || phase === "call") setState("reconnecting");
});

function showPresence(consultants) {
  const me = consultants.find((c) => c.slug === slug);
  const status = me ? me.status : "offline";
  presence.textContent = status === "busy" ? "in a call" : status;
  presence.dataset.status = status;
}

signaling.on("hello", (frame) => {
  iceServers = Array.isArray(frame.ice_servers) ? frame.ice_servers : [];
  connected = true;
  updateJoinButton();
  showPresence(frame.consultants || []);
});
signaling.on("consultants", (frame) => showPresence(frame.consultants || []));

signaling.on("queued", (frame) => {
  remember({ token: frame.token });
  if (phase !== "call") {
    phase = "queued";
    flushCandidates();
  }
  showPosition(frame.position, frame.eta_seconds);
  setState("queued");
});

signaling.on("position", (frame) => showPosition(frame.position, frame.eta_seconds));

signaling.on("accepted", async (frame) => {
  chime([523, 659, 784]);
  phase = "call";
  setState("connecting");
  if (peer && peer.awaitingAnswer) {
    await peer.receive({ description: frame.answer });
    flushCandidates();
  } else {
    // This page was reloaded while waiting: the consultant answered the offer
    // of the old page, so the call is built again on a new one.
    await reconnectCall();
  }
});

signaling.on("resumed", async () => {
  setState("connecting", "Back in the call: reconnecting media…");
  await reconnectCall();
});

signaling.on("peer", async (frame) => {
  if (frame.state === "reconnecting") {
    setState("reconnecting", `${consultantName}'s connection dropped; waiting for them to come back…`);
  } else if (frame.state === "back" && phase === "call") {
    setState("connecting", `${consultantName} is back: reconnecting media…`);
    await reconnectCall();
  }
});

signaling.on("offer", async (frame) => {
  if (phase !== "call") return;
  if (!peer || !peer.sameRemote(frame.offer)) return reconnectCall();
  await peer.receive({ description: frame.offer });
});
signaling.on("answer", (frame) => peer && peer.receive({ description: frame.answer }));
signaling.on("ice", (frame) => peer && peer.receive({ candidate: frame.candidate }));

signaling.on("refused", (frame) => {
  const reason = frame.reason ? `Reason: ${frame.reason}` : "No reason was given.";
  showEnd("refused", `${consultantName} could not take your call`, reason);
});

signaling.on("hangup", (frame) => {
  let text = `${consultantName} ended the call.`;
  if (frame.reason === "disconnected") text = `${consultantName}'s connection was lost.`;
  else if (frame.by === "caller") text = "You ended the call.";
  showEnd("ended", "The call has ended", text);
});

signaling.on("cancelled", () => backToForm("You left the queue."));

signaling.on("error", (frame) => {
  if (frame.code === "bad_token" && phase === "call") {
    showEnd("ended", "The call has ended", "The call ended while you were disconnected.");
  } else if (frame.code === "bad_token") {
    backToForm("Your place in the queue has expired. You can join again.");
  } else if (phase === "joining") {
    backToForm("", JOIN_ERRORS[frame.code] || frame.message || "Could not join.");
  } else {
    console.warn("server error", frame.code, frame.message);
  }
});

// --- the buttons ----------------------------------------------------------------

form.addEventListener("submit", join);
audioOnlyBox.addEventListener("change", preview);
cameraSelect.addEventListener("change", preview);
micSelect.addEventListener("change", preview);
$("[data-check-media]").addEventListener("click", preview);

$('[data-testid="caller-cancel"]').addEventListener("click", () => signaling.send("cancel"));

$('[data-testid="hangup"]').addEventListener("click", () => {
  signaling.send("hangup");
  showEnd("ended", "The call has ended", "You ended the call.");
});

$("[data-again]").addEventListener("click", async () => {
  setState("idle");
  await preview();
  nameInput.focus();
});

// --- start ---------------------------------------------------------------------

const saved = recall();
if (saved) {
  nameInput.value = saved.name || "";
  reasonInput.value = saved.reason || "";
  audioOnlyBox.checked = Boolean(saved.audioOnly);
}
if (saved && saved.token) {
  phase = "queued";
  setState("reconnecting", "Getting your place back…");
} else {
  setState("idle");
}
preview();
signaling.connect();
