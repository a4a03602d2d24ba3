/**
 * One reader of RTCPeerConnection.getStats() for the call pages: the watchdog,
 * the quality badge and the summary sent to the server all read the same
 * sample, taken every few seconds (W3C "Identifiers for WebRTC's Statistics
 * API": candidate-pair, local-candidate, inbound-rtp, outbound-rtp).
 *
 * sample(pc, previous) resolves to
 *   { at: ms since page load,
 *     rttMs, jitterMs: number | null,
 *     lossPct: inbound packets lost since `previous`, 0-100, or null,
 *     inKbps, outKbps: bit rates since `previous` (kbit/s) or null,
 *     audioPacketsIn, videoPacketsIn, framesDecoded: running totals,
 *     fps: decoded frames per second or null,
 *     candidateType: "host" | "srflx" | "prflx" | "relay" | null (ours, selected pair),
 *     protocol: "udp" | "tcp" | "tls" | null (to the TURN server when relayed) }
 * Totals let the next sample compute rates; pass the last sample back in.
 */

export async function sample(pc, previous = null) {
  const report = await pc.getStats();
  const now = performance.now();
  const totals = {
    bytesIn: 0,
    bytesOut: 0,
    packetsIn: 0,
    packetsLost: 0,
    audioPacketsIn: 0,
    videoPacketsIn: 0,
    framesDecoded: 0,
  };
  let jitter = null;
  let pair = null;
  let selectedPairId = null;
  report.forEach((stat) => {
    if (stat.type === "transport" && stat.selectedCandidatePairId) {
      selectedPairId = stat.selectedCandidatePairId;
    } else if (stat.type === "inbound-rtp") {
      totals.bytesIn += stat.bytesReceived || 0;
      totals.packetsIn += stat.packetsReceived || 0;
      totals.packetsLost += Math.max(0, stat.packetsLost || 0);
      if (stat.kind === "audio") {
        totals.audioPacketsIn += stat.packetsReceived || 0;
        if (typeof stat.jitter === "number") jitter = stat.jitter;
      } else if (stat.kind === "video") {
        totals.videoPacketsIn += stat.packetsReceived || 0;
        totals.framesDecoded += stat.framesDecoded || 0;
      }
    } else if (stat.type === "outbound-rtp") {
      totals.bytesOut += stat.bytesSent || 0;
    }
  });
  if (selectedPairId) pair = report.get(selectedPairId) || null;
  if (!pair) {
    report.forEach((stat) => {
      if (stat.type === "candidate-pair" && stat.nominated && stat.state === "succeeded") pair = stat;
    });
  }
  const local = pair ? report.get(pair.localCandidateId) : null;
  const seconds = previous ? (now - previous.at) / 1000 : 0;
  const rate = (key) =>
    previous && seconds > 0 ? Math.max(0, ((totals[key] - previous.totals[key]) * 8) / 1000 / seconds) : null;
  let lossPct = null;
  if (previous) {
    const received = totals.packetsIn - previous.totals.packetsIn;
    const lost = totals.packetsLost - previous.totals.packetsLost;
    if (received + lost > 0) lossPct = (100 * Math.max(0, lost)) / (received + lost);
  }
  return {
    at: now,
    totals,
    rttMs: pair && typeof pair.currentRoundTripTime === "number" ? pair.currentRoundTripTime * 1000 : null,
    jitterMs: jitter === null ? null : jitter * 1000,
    lossPct,
    inKbps: rate("bytesIn"),
    outKbps: rate("bytesOut"),
    audioPacketsIn: totals.audioPacketsIn,
    videoPacketsIn: totals.videoPacketsIn,
    framesDecoded: totals.framesDecoded,
    fps:
      previous && seconds > 0
        ? Math.max(0, (totals.framesDecoded - previous.totals.framesDecoded) / seconds)
        : null,
    candidateType: local ? local.candidateType || null : null,
    protocol: local ? (local.candidateType === "relay" ? local.relayProtocol : local.protocol) || null : null,
  };
}

/**
 * Samples one connection every `intervalMs` (default 2000) and hands each
 * sample to every subscriber, so a page reads getStats() once however many
 * features watch the call. subscribe(fn) returns an unsubscribe function;
 * stop() ends the loop (the call's end, or a new connection).
 */
export class StatsLoop {
  constructor(pc, { intervalMs = 2000 } = {}) {
    this.pc = pc;
    this.subscribers = new Set();
    this.last = null;
    this.timer = setInterval(() => this.tick(), intervalMs);
  }

  subscribe(fn) {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  async tick() {
    if (this.pc.connectionState === "closed") return;
    let current;
    try {
      current = await sample(this.pc, this.last);
    } catch {
      return; // A connection closed between the check and the read.
    }
    this.last = current;
    for (const fn of this.subscribers) fn(current);
  }

  stop() {
    clearInterval(this.timer);
    this.subscribers.clear();
  }
}
