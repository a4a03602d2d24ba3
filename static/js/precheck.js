/**
 * The pre-call check on the caller's page (docs/connectivity.md): camera,
 * microphone level, a test sound, and a network probe with the ICE servers
 * from `hello` that classifies the caller as
 *   "direct"  a server-reflexive candidate, or a relay reached over UDP (UDP
 *             works), or no STUN/TURN configured and a host candidate;
 *   "relay"   only relay candidates over TCP or TLS: only TURN will carry media;
 *   "blocked" STUN/TURN configured and none of it reachable.
 * The probe never delays the join: `joinFields()` carries the class once known.
 */

import { watchLevel } from "./audiolevel.js";
import { chime, unlockSound } from "./chime.js";
import { gettext } from "./i18n.js";

// The probe's bound: what is not gathered by then does not count.
const PROBE_MS = 4000;

const urlsOf = (server) => (Array.isArray(server.urls) ? server.urls : [server.urls || ""]);

/** Gather candidates with a throwaway connection; resolves to what was found. */
export async function gather(iceServers, { timeoutMs = PROBE_MS } = {}) {
  const found = { host: false, srflx: false, relay: new Set() };
  const pc = new RTCPeerConnection({ iceServers });
  pc.createDataChannel("probe");
  const done = new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    pc.onicecandidate = ({ candidate }) => {
      if (!candidate) {
        clearTimeout(timer);
        resolve();
      } else if (candidate.type === "host") {
        found.host = true;
      } else if (candidate.type === "srflx") {
        found.srflx = true;
      } else if (candidate.type === "relay") {
        found.relay.add(candidate.relayProtocol || "");
      }
    };
  });
  try {
    await pc.setLocalDescription(await pc.createOffer());
    await done;
    if (found.relay.has("")) await relayProtocols(pc, found);
  } finally {
    pc.onicecandidate = null;
    pc.close();
  }
  return found;
}

// Older browsers name the relay's protocol only in the stats.
async function relayProtocols(pc, found) {
  found.relay.delete("");
  (await pc.getStats()).forEach((stat) => {
    if (stat.type === "local-candidate" && stat.candidateType === "relay") {
      found.relay.add(stat.relayProtocol || "udp");
    }
  });
}

/** The class of what `gather` found, given whether any STUN/TURN was configured. */
export function classify(found, { servers }) {
  if (found.srflx || found.relay.has("udp")) return "direct";
  if (found.relay.size > 0) return "relay";
  if (!servers && found.host) return "direct";
  return "blocked";
}

const TEXT = {
  checking: () => gettext("Network: checking…"),
  direct: () => gettext("Network: good for video calls."),
  relay: () => gettext("Network: calls will go through our relay server; that works, sometimes with a little delay."),
  blocked: () => gettext("Network: calls seem to be blocked here."),
};

export class PreCheck {
  /**
   * `root` is the check's fieldset, `preview` the caller's Preview; `onAudioOnly()`
   * switches the join to audio only, `onCallback()` opens the callback form.
   */
  constructor({ root, signaling, preview, onAudioOnly, onCallback }) {
    this.root = root;
    this.preview = preview;
    this.verdict = root.querySelector('[data-testid="precheck"]');
    this.blocked = root.querySelector("[data-precheck-blocked]");
    this.camera = root.querySelector("[data-precheck-camera]");
    this.meter = root.querySelector('[data-testid="mic-level"]');
    this.connectivity = "";
    this.started = false;
    this.watched = null;
    this.stopLevel = () => {};
    signaling.on("hello", (frame) => this.start(Array.isArray(frame.ice_servers) ? frame.ice_servers : []));
    const toneNote = root.querySelector("[data-precheck-tone-note]");
    root.querySelector("[data-precheck-tone]").addEventListener("click", () => {
      unlockSound();
      // The context may still be resuming on this first click.
      setTimeout(() => chime([523, 659, 784]), 50);
      toneNote.textContent = gettext("Did you hear three notes? If not, check the speaker or headset.");
    });
    root.querySelector("[data-precheck-audio-only]").addEventListener("click", onAudioOnly);
    root.querySelector("[data-precheck-callback]").addEventListener("click", onCallback);
    // The preview reopens its stream on every change of device: follow it.
    setInterval(() => this.followStream(), 500);
  }

  /** The `join` frame's fields the check adds: the class, once known. */
  joinFields() {
    return this.connectivity ? { connectivity: this.connectivity } : {};
  }

  followStream() {
    const stream = this.preview.stream;
    if (stream === this.watched) return;
    this.watched = stream;
    this.stopLevel();
    this.stopLevel = watchLevel(stream, (level) => {
      this.meter.value = level;
    });
    const live = (kind) => Boolean(stream) && stream.getTracks().some((t) => t.kind === kind && t.readyState === "live");
    this.camera.textContent = live("video")
      ? gettext("Camera: working.")
      : gettext("Camera: off or not found (you can still join with audio).");
    if (!live("audio")) this.meter.value = 0;
  }

  async start(iceServers) {
    if (this.started) return;
    this.started = true;
    this.show("checking");
    const servers = iceServers.some((server) => urlsOf(server).some((url) => /^(stuns?|turns?):/.test(url)));
    let found = { host: false, srflx: false, relay: new Set() };
    try {
      found = await gather(iceServers);
    } catch (error) {
      console.warn("network check failed", error);
    }
    this.connectivity = classify(found, { servers });
    this.show(this.connectivity);
  }

  show(kind) {
    this.verdict.dataset.class = kind;
    this.verdict.textContent = TEXT[kind]();
    this.blocked.hidden = kind !== "blocked";
  }
}
