/**
 * One call as either page lives it: the Peer, the hand-off of its offers,
 * answers and candidates to and from the signaling socket, the lifecycle and
 * the teardown. A page builds one session, tells it what the server said, and
 * wires only its own DOM.
 *
 * `phase` is where the session stands:
 *   "idle"     no call, no connection;
 *   "joining"  (caller) the offer is being made and sent with `join`;
 *   "queued"   (caller) the server holds the place in the queue;
 *   "call"     a consultation, from the accept (or a comeback) to the end.
 * The media connection is reported through `onState` as the page's call
 * state: "in-call" when connected, "reconnecting" when it fails or drops.
 */

import { StatsLoop } from "./callstats.js";
import { hasVideo, Peer } from "./peer.js";
import { reportStats } from "./statsreport.js";

const kindsFor = (video) => (video ? ["audio", "video"] : ["audio"]);

class CallSession {
  /** `view` is the page's CallView: remote media, chat channel, connection line. */
  constructor({ signaling, view, onState, polite }) {
    this.signaling = signaling;
    this.view = view;
    this.onState = onState;
    this.polite = polite;
    this.iceServers = [];
    this.phase = "idle";
    this.peer = null;
    // The one getStats() loop of the current connection, and who watches it
    // (the watchdog, the quality badge, the report to the server).
    this.stats = null;
    this.peerWatchers = [];
    reportStats(this, signaling);
    signaling.on("hello", (frame) => {
      this.iceServers = Array.isArray(frame.ice_servers) ? frame.ice_servers : [];
    });
    signaling.on("offer", (frame) => this.phase === "call" && this.takeOffer(frame.offer));
    signaling.on("answer", (frame) => this.receive({ description: frame.answer }));
    signaling.on("ice", (frame) => this.receive({ candidate: frame.candidate }));
  }

  receive(message) {
    if (this.peer) this.peer.receive(message);
  }

  /**
   * Call `fn(peer, stats)` with each new connection of a call and its one
   * StatsLoop (callstats.js), which every feature watching the call
   * subscribes to; `fn(null, null)` when the connection is dropped.
   */
  watchPeers(fn) {
    this.peerWatchers.push(fn);
  }

  newPeer(options = {}) {
    // A replaced connection may still gather candidates or change state: only
    // the current one speaks.
    const peer = new Peer({
      iceServers: this.iceServers,
      polite: this.polite,
      signal: (message) => peer === this.peer && this.send(message),
      onTrack: (track, stream) => this.view.showRemote(track, stream),
      onConnectionState: (state) => peer === this.peer && this.connectionChanged(state),
      ...options,
    });
    if (this.stats) this.stats.stop();
    this.stats = new StatsLoop(peer.pc, { intervalMs: 1000 });
    for (const fn of this.peerWatchers) fn(peer, this.stats);
    return peer;
  }

  send({ description, candidate }) {
    if (description) this.signaling.send(description.type, { [description.type]: description });
    else this.signaling.send("ice", { candidate });
  }

  connectionChanged(state) {
    this.view.setConnection(state);
    // The server counts talk time from the first report, and records a call
    // that never got here as failed to connect.
    if (state === "connected") this.signaling.send("media", { state: "connected" });
    if (state === "connected") this.onState("in-call");
    else if (state === "failed" || state === "disconnected") this.onState("reconnecting");
  }

  dropPeer() {
    if (this.peer) this.peer.close();
    this.peer = null;
    if (this.stats) {
      this.stats.stop();
      this.stats = null;
      for (const fn of this.peerWatchers) fn(null, null);
    }
  }

  /** Close the connection and forget the call (the page stops its own stream). */
  end() {
    this.dropPeer();
    this.phase = "idle";
    this.view.setChannel(null);
    this.view.clearRemote();
    this.view.forgetChat();
  }
}

/**
 * The caller offers: its first offer travels with `join`, and after a reload
 * or the consultant's comeback it builds a new connection and offers again.
 * `reconnectMedia()` resolves to `{stream, audioOnly}` for such a connection.
 */
export class CallerSession extends CallSession {
  constructor({ signaling, view, onState, reconnectMedia }) {
    super({ signaling, view, onState, polite: false });
    this.reconnectMedia = reconnectMedia;
    this.offerReady = null;
    // The server has nowhere to put candidates before the place exists.
    this.heldCandidates = [];
    this.joinFrame = null;
    this.reconnects = 0;
  }

  /** A place kept by a token from before a reload; `resume` says what became of it. */
  waitInQueue() {
    this.phase = "queued";
  }

  /**
   * Join the queue: `fields` are the `join` frame's own, `media()` resolves
   * to `{stream, audioOnly}` once the camera and mic are ready.
   */
  async join(fields, media) {
    this.phase = "joining";
    const { stream, audioOnly } = await media();
    const offer = new Promise((resolve) => {
      this.offerReady = resolve;
    });
    this.peer = this.offeringPeer(stream, audioOnly);
    this.joinFrame = { ...fields, offer: await offer };
    this.signaling.send("join", this.joinFrame);
  }

  /** The same `join` again, after `try_later`; false when there is none to send. */
  joinAgain() {
    if (this.phase !== "joining" || !this.joinFrame) return false;
    return this.signaling.send("join", this.joinFrame);
  }

  /** The server holds the place (`queued`). */
  queued() {
    if (this.phase === "call") return;
    this.phase = "queued";
    this.flushCandidates();
  }

  /** The consultant answered (`accepted`). */
  async accepted(answer) {
    this.phase = "call";
    if (this.peer && this.peer.awaitingAnswer) {
      await this.peer.receive({ description: answer });
      this.flushCandidates();
    } else {
      // This page was reloaded while waiting: the consultant answered the offer
      // of the old page, so the call is built again on a new one.
      await this.reconnect();
    }
  }

  /** A fresh connection, offered to the consultant (after a reload or their comeback). */
  async reconnect() {
    const attempt = ++this.reconnects;
    this.dropPeer();
    this.phase = "call";
    this.heldCandidates = [];
    const { stream, audioOnly } = await this.reconnectMedia();
    // A later comeback or an end of the call overtook this one.
    if (this.phase !== "call" || attempt !== this.reconnects) return;
    this.peer = this.offeringPeer(stream, audioOnly);
  }

  async takeOffer(offer) {
    // An offer for a connection this page does not have: build the call again.
    if (!this.peer || !this.peer.sameRemote(offer)) return this.reconnect();
    await this.peer.receive({ description: offer });
  }

  offeringPeer(stream, audioOnly) {
    const peer = this.newPeer();
    peer.attach(stream, kindsFor(!audioOnly));
    // The channel is made before the offer so that the offer carries it.
    this.view.setChannel(peer.createChannel("chat"));
    return peer;
  }

  send(message) {
    if (message.description && this.phase === "joining" && this.offerReady) {
      this.offerReady(message.description);
      this.offerReady = null;
    } else if (message.candidate && (this.phase === "joining" || !this.signaling.open)) {
      this.heldCandidates.push(message.candidate);
    } else {
      super.send(message);
    }
  }

  flushCandidates() {
    for (const candidate of this.heldCandidates.splice(0)) {
      this.signaling.send("ice", { candidate });
    }
  }

  end() {
    super.end();
    this.offerReady = null;
    this.joinFrame = null;
    this.heldCandidates = [];
  }
}

/**
 * The consultant answers the caller's offers, the first one with local media
 * to match it: `answerMedia(video)` resolves to the stream to send, or null.
 */
export class ConsultantSession extends CallSession {
  constructor({ signaling, view, onState, answerMedia }) {
    super({ signaling, view, onState, polite: true });
    this.answerMedia = answerMedia;
    // The consultation's caller, as the `caller` frame gave it, or null.
    this.caller = null;
  }

  /** A consultation starts (`caller`, or `resumed` after a reload of the desk). */
  begin(caller) {
    this.dropPeer();
    this.caller = caller;
    this.phase = "call";
  }

  /** Answer the offer of the `caller` frame, then add the candidates kept with the ticket. */
  async answer({ offer, candidates }) {
    await this.takeOffer(offer);
    const peer = this.peer;
    for (const candidate of candidates || []) if (peer) await peer.receive({ candidate });
  }

  async takeOffer(offer) {
    // An offer from a new connection (the caller reloaded) replaces ours.
    if (this.peer && !this.peer.sameRemote(offer)) this.dropPeer();
    if (!this.peer) this.peer = this.answeringPeer();
    await this.peer.receive({ description: offer });
  }

  answeringPeer() {
    const peer = this.newPeer({
      onChannel: (channel) => this.view.setChannel(channel),
      beforeAnswer: async (offer) => {
        if (peer.sendsMedia) return;
        const video = hasVideo(offer.sdp);
        const stream = await this.answerMedia(video);
        if (peer.closed) return;
        peer.attach(stream, kindsFor(video));
      },
    });
    return peer;
  }

  end() {
    super.end();
    this.caller = null;
  }
}
