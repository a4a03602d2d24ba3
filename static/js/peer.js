/**
 * One RTCPeerConnection in the shape of MDN's "perfect negotiation" pattern.
 *
 * Either side may offer at any time (ICE restart, renegotiation); on a glare
 * the polite side rolls back and takes the other's offer, the impolite side
 * ignores the other's offer. Here the caller is impolite and the consultant
 * polite: the caller's offer is the one a call is built on (it travels with
 * `join`, and a caller that reloads builds a new connection and offers again),
 * so the caller's offers must win.
 *
 * `signal({description})` / `signal({candidate})` hand what must reach the other
 * side to the call session (session.js), which passes what arrives to `receive`.
 * `close()` stops every track and detaches every handler.
 */

export function fingerprintOf(sdp) {
  const match = /^a=fingerprint:(.+)$/m.exec(sdp || "");
  return match ? match[1].trim() : "";
}

export function hasVideo(sdp) {
  return /^m=video [1-9]/m.test(sdp || "");
}

export class Peer {
  constructor({
    iceServers,
    polite,
    signal,
    onTrack,
    onConnectionState,
    onChannel,
    beforeAnswer,
  }) {
    this.pc = new RTCPeerConnection({ iceServers });
    this.polite = polite;
    this.signal = signal;
    this.beforeAnswer = beforeAnswer || (async () => {});
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.isSettingRemoteAnswerPending = false;
    // Candidates that arrive before any remote description have nowhere to go yet.
    this.earlyCandidates = [];
    this.closed = false;
    const pc = this.pc;
    pc.onnegotiationneeded = async () => {
      try {
        this.makingOffer = true;
        await pc.setLocalDescription();
        this.signal({ description: plain(pc.localDescription) });
      } catch (error) {
        console.error("offer failed", error);
      } finally {
        this.makingOffer = false;
      }
    };
    pc.onicecandidate = ({ candidate }) => {
      // A null candidate ends gathering; Chromium needs no end-of-candidates
      // marker from the other side, so none is sent.
      if (candidate && candidate.candidate) this.signal({ candidate: candidate.toJSON() });
    };
    pc.ontrack = ({ track, streams }) => onTrack && onTrack(track, streams[0]);
    pc.ondatachannel = ({ channel }) => onChannel && onChannel(channel);
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "failed") pc.restartIce();
      if (onConnectionState) onConnectionState(pc.connectionState);
    };
  }

  /** Send the stream's tracks; receive (only) the `kinds` it has no track for. */
  attach(stream, kinds) {
    for (const kind of kinds) {
      const tracks = stream ? stream.getTracks().filter((t) => t.kind === kind) : [];
      if (tracks.length) for (const track of tracks) this.pc.addTrack(track, stream);
      else this.pc.addTransceiver(kind, { direction: "recvonly" });
    }
  }

  createChannel(label) {
    return this.pc.createDataChannel(label);
  }

  /** Whether a description comes from the connection this one already talks to. */
  sameRemote(description) {
    const current = this.pc.remoteDescription;
    return !current || fingerprintOf(current.sdp) === fingerprintOf(description.sdp);
  }

  get sendsMedia() {
    return this.pc.getSenders().some((sender) => sender.track);
  }

  get awaitingAnswer() {
    return this.pc.signalingState === "have-local-offer";
  }

  async receive({ description, candidate }) {
    const pc = this.pc;
    if (this.closed) return;
    try {
      if (description) {
        // An offer that arrives while an answer is still being set is no
        // collision: setRemoteDescription queues it behind the answer, and
        // ignoring it would leave the other side waiting for an answer for good.
        const readyForOffer =
          !this.makingOffer &&
          (pc.signalingState === "stable" || this.isSettingRemoteAnswerPending);
        const offerCollision = description.type === "offer" && !readyForOffer;
        this.ignoreOffer = !this.polite && offerCollision;
        if (this.ignoreOffer) return;
        this.isSettingRemoteAnswerPending = description.type === "answer";
        try {
          await pc.setRemoteDescription(description);
        } finally {
          this.isSettingRemoteAnswerPending = false;
        }
        if (description.type === "offer") {
          await this.beforeAnswer(description);
          if (this.closed) return;
          await pc.setLocalDescription();
          this.signal({ description: plain(pc.localDescription) });
        }
        for (const early of this.earlyCandidates.splice(0)) await this.addCandidate(early);
      } else if (candidate && candidate.candidate) {
        if (!pc.remoteDescription) this.earlyCandidates.push(candidate);
        else await this.addCandidate(candidate);
      }
    } catch (error) {
      // A connection closed meanwhile (replaced, or the call ended) fails quietly.
      if (!this.closed) console.error("signaling message failed", error);
    }
  }

  async addCandidate(candidate) {
    try {
      await this.pc.addIceCandidate(candidate);
    } catch (error) {
      // Candidates of an ignored offer, or of a connection the other side
      // has since replaced, are expected to fail.
      if (!this.ignoreOffer) console.warn("candidate not added", error);
    }
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    const pc = this.pc;
    pc.onnegotiationneeded = pc.onicecandidate = pc.ontrack = null;
    pc.ondatachannel = pc.onconnectionstatechange = null;
    for (const sender of pc.getSenders()) if (sender.track) sender.track.stop();
    for (const receiver of pc.getReceivers()) receiver.track.stop();
    pc.close();
  }
}

function plain(description) {
  return { type: description.type, sdp: description.sdp };
}
