/**
 * Each side sees the other's state (docs/connectivity.md): this page sends a
 * `tracks` frame {muted, camera_off, audio_only} whenever its own mute or
 * camera changes and when its connection comes up, and shows the other side's
 * as `peer-muted`, `peer-camera-off` and an audio-only badge; `call-quality`
 * (`data-level` good, poor or bad) reads round-trip time and loss from the
 * call's StatsLoop.
 */

import { write } from "./callview.js";
import { gettext, interpolate } from "./i18n.js";

/** "good", "poor" or "bad" from a callstats sample, or null when it says nothing. */
export function qualityOf({ rttMs, lossPct }) {
  if (rttMs === null && lossPct === null) return null;
  const rtt = rttMs ?? 0;
  const loss = lossPct ?? 0;
  if (rtt >= 700 || loss >= 10) return "bad";
  if (rtt >= 300 || loss >= 3) return "poor";
  return "good";
}

const QUALITY_TEXT = {
  good: () => gettext("Connection: good"),
  poor: () => gettext("Connection: poor"),
  bad: () => gettext("Connection: bad"),
};

export class PeerState {
  /** `root` holds the call panel; `view` is the page's CallView; `otherName()` is `isolate`d. */
  constructor({ root, session, signaling, view, otherName }) {
    this.session = session;
    this.signaling = signaling;
    this.view = view;
    this.otherName = otherName;
    this.audioOnly = false;
    this.muted = root.querySelector('[data-testid="peer-muted"]');
    this.cameraOff = root.querySelector('[data-testid="peer-camera-off"]');
    this.peerAudioOnly = root.querySelector("[data-peer-audio-only]");
    this.quality = root.querySelector('[data-testid="call-quality"]');
    // CallView handles these clicks first (it was built first): then tell.
    for (const button of root.querySelectorAll("[data-mute], [data-camera]")) {
      button.addEventListener("click", () => this.send());
    }
    signaling.on("tracks", (frame) => this.show(frame));
    session.watchPeers((peer, stats) => {
      this.clear();
      if (!peer) return;
      peer.pc.addEventListener("connectionstatechange", () => {
        if (peer.pc.connectionState === "connected") this.send();
      });
      stats.subscribe((sample) => this.showQuality(qualityOf(sample)));
    });
  }

  /** The watchdog went audio only: the other side is told. */
  goAudioOnly() {
    this.audioOnly = true;
    this.send();
  }

  send() {
    if (this.session.phase !== "call") return;
    const stream = this.view.stream;
    const video = Boolean(stream) && stream.getVideoTracks().some((t) => t.readyState === "live");
    this.signaling.send("tracks", {
      muted: this.view.muted,
      camera_off: video && this.view.cameraOff,
      audio_only: this.audioOnly || !video,
    });
  }

  show(frame) {
    const name = this.otherName();
    // The name comes `isolate`d: `write` keeps it from reordering the sentence.
    write(this.muted, interpolate(gettext("%(name)s is muted"), { name }));
    write(this.cameraOff, interpolate(gettext("%(name)s turned the camera off"), { name }));
    this.peerAudioOnly.textContent = gettext("audio only");
    this.muted.hidden = !frame.muted;
    this.cameraOff.hidden = !frame.camera_off;
    this.peerAudioOnly.hidden = !frame.audio_only;
  }

  showQuality(level) {
    if (!level || level === this.quality.dataset.level) return;
    this.quality.dataset.level = level;
    this.quality.textContent = QUALITY_TEXT[level]();
  }

  clear() {
    this.audioOnly = false;
    this.muted.hidden = this.cameraOff.hidden = this.peerAudioOnly.hidden = true;
    this.showQuality("good");
  }
}
