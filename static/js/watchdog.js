/**
 * The watchdog of a call, on both pages (docs/connectivity.md). It reads the
 * call's StatsLoop and its connection state, and when media does not start
 * within the connecting bound after the answer (`connect_seconds` of `hello`),
 * or inbound media stops for a few seconds while the other side's socket is
 * alive, or the connection goes disconnected or failed, it climbs a ladder:
 *   "ice-restart"  the impolite side (the caller) restarts ICE and offers;
 *   "relay"        both force iceTransportPolicy "relay", and the caller restarts
 *                  ICE again (skipped when no TURN server is configured);
 *   "audio-only"   both stop sending video, to save bandwidth;
 *   "callback"     the caller is offered a callback.
 * Each rung is shown to both people (the other page follows the `watchdog`
 * frame to the same rung) and reported to the server, which records it and
 * the rung after which media flowed again.
 */

import { gettext } from "./i18n.js";

export const LADDER = ["ice-restart", "relay", "audio-only", "callback"];
const STEP_MS = 4000;
// Samples (one a second) without a new inbound packet that count as a stall.
const STALL_SAMPLES = 3;
const RECOVERED_SHOWN_MS = 4000;

const STEP_TEXT = {
  "ice-restart": () => gettext("Reconnecting…"),
  relay: () => gettext("Switching to a relay…"),
  "audio-only": () => gettext("Continuing with audio only…"),
  callback: () => gettext("The connection could not be rescued. You can hang up and be called back instead."),
};

const hasTurn = (servers) =>
  servers.some((server) => [].concat(server.urls || []).some((url) => /^turns?:/.test(url)));

export class Watchdog {
  /**
   * `element` is the `watchdog-step` line; `drives` is true on the impolite
   * side (it restarts ICE); `answered` the frame types that start a call's
   * connecting bound; `onAudioOnly()` and `onCallback()` act on the page.
   */
  constructor({ session, signaling, element, drives, answered, onAudioOnly, onCallback }) {
    this.session = session;
    this.signaling = signaling;
    this.element = element;
    this.drives = drives;
    this.onAudioOnly = onAudioOnly || (() => {});
    this.onCallback = onCallback || (() => {});
    this.connectMs = 10_000;
    this.peer = null;
    this.step = -1;
    this.timers = [];
    this.hideTimer = null;
    this.deadline = null;
    this.peerAway = false;
    this.resetCounts();
    signaling.on("hello", (frame) => {
      if (typeof frame.connect_seconds === "number") this.connectMs = frame.connect_seconds * 1000;
    });
    for (const type of answered) signaling.on(type, () => this.armDeadline());
    signaling.on("watchdog", (frame) => this.fromPeer(frame));
    signaling.on("peer", (frame) => {
      // The other side's socket dropped: the comeback rebuilds the call, not us.
      this.peerAway = frame.state === "reconnecting";
      if (this.peerAway) this.stand();
      else this.armDeadline();
    });
    session.watchPeers((peer, stats) => this.watch(peer, stats));
  }

  resetCounts() {
    this.everConnected = false;
    this.packets = null;
    this.seenPackets = false;
    this.stalled = 0;
  }

  get live() {
    return this.peer !== null && this.peer === this.session.peer && this.session.phase === "call";
  }

  watch(peer, stats) {
    this.stand();
    this.hide();
    this.peer = peer;
    this.resetCounts();
    if (!peer) return;
    peer.pc.addEventListener("connectionstatechange", () => peer === this.peer && this.connectionChanged());
    stats.subscribe((sample) => peer === this.peer && this.sampled(sample));
  }

  armDeadline() {
    clearTimeout(this.deadline);
    this.deadline = setTimeout(() => {
      if (this.live && this.peer.pc.connectionState !== "connected") this.trouble();
    }, this.connectMs);
  }

  connectionChanged() {
    const state = this.peer.pc.connectionState;
    if (state === "connected") {
      this.everConnected = true;
      clearTimeout(this.deadline);
    } else if ((state === "disconnected" || state === "failed") && this.everConnected) {
      this.trouble();
    }
  }

  sampled(sample) {
    const packets = sample.audioPacketsIn + sample.videoPacketsIn;
    const flowing = this.packets !== null && packets > this.packets;
    this.packets = packets;
    if (flowing) {
      this.seenPackets = true;
      this.stalled = 0;
      if (this.step >= 0 && this.peer.pc.connectionState === "connected") this.recovered(true);
      return;
    }
    // A side that sends nothing at all (no camera, no mic) is no stall.
    if (!this.seenPackets || !this.everConnected) return;
    this.stalled += 1;
    if (this.stalled >= STALL_SAMPLES) this.trouble();
  }

  trouble() {
    if (this.step >= 0 || this.peerAway || !this.live) return;
    this.climb(0, true);
  }

  /** Take rung `index` (telling the other side when `announce`), then plan the next. */
  climb(index, announce) {
    this.stand();
    this.step = index;
    const step = LADDER[index];
    this.apply(step);
    this.show(step, STEP_TEXT[step]());
    if (announce) this.signaling.send("watchdog", { step });
    const next = this.nextAfter(index);
    if (next !== null) this.timers.push(setTimeout(() => this.live && this.climb(next, true), STEP_MS));
  }

  nextAfter(index) {
    let next = index + 1;
    if (LADDER[next] === "relay" && !hasTurn(this.session.iceServers)) next += 1;
    return next < LADDER.length ? next : null;
  }

  apply(step) {
    const pc = this.peer.pc;
    try {
      if (step === "relay") pc.setConfiguration({ ...pc.getConfiguration(), iceTransportPolicy: "relay" });
      if ((step === "ice-restart" || step === "relay") && this.drives) pc.restartIce();
    } catch (error) {
      console.warn("watchdog step failed", step, error);
    }
    if (step === "audio-only") {
      for (const sender of pc.getSenders()) {
        if (sender.track && sender.track.kind === "video") sender.track.enabled = false;
      }
      this.onAudioOnly();
    }
    if (step === "callback") this.onCallback();
  }

  fromPeer(frame) {
    if (!this.live) return;
    if (frame.recovered) {
      if (this.step >= 0) this.recovered(false);
      return;
    }
    const index = LADDER.indexOf(frame.step);
    if (index > this.step) this.climb(index, false);
  }

  recovered(announce) {
    const step = LADDER[this.step];
    this.stand();
    this.stalled = 0;
    this.show("", gettext("Connection restored."));
    this.element.dataset.recovered = step;
    if (announce) this.signaling.send("watchdog", { step, recovered: true });
    this.hideTimer = setTimeout(() => this.hide(), RECOVERED_SHOWN_MS);
  }

  /** Stop climbing (the timers of the ladder in progress). */
  stand() {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers = [];
    this.step = -1;
  }

  show(step, text) {
    clearTimeout(this.hideTimer);
    this.element.dataset.step = step;
    delete this.element.dataset.recovered;
    this.element.textContent = text;
    this.element.hidden = false;
  }

  hide() {
    clearTimeout(this.hideTimer);
    this.element.hidden = true;
    this.element.dataset.step = "";
    delete this.element.dataset.recovered;
    this.element.textContent = "";
  }
}
