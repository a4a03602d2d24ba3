/**
 * Sends the server a compact summary of the call's quality every few seconds
 * (docs/protocol.md, `stats`): one sample in `EVERY`, rounded, unknown
 * figures left out. The server keeps per-call aggregates, not the samples.
 */

// The loop samples every second (session.js); a summary every 4 s is plenty
// for aggregates, and well inside the server's one per 2 s.
const EVERY = 4;

const round = (value, places = 0) => {
  const factor = 10 ** places;
  return Math.round(value * factor) / factor;
};

/** The `stats` frame's fields for one callstats.js sample. */
export function summary(sample) {
  const fields = {
    rtt: sample.rttMs,
    loss: sample.lossPct,
    jitter: sample.jitterMs,
    in: sample.inKbps,
    out: sample.outKbps,
    fps: sample.fps,
  };
  const frame = {};
  for (const [key, value] of Object.entries(fields)) {
    if (typeof value === "number" && Number.isFinite(value)) frame[key] = round(value, 1);
  }
  frame.frames = sample.framesDecoded;
  if (sample.candidateType) frame.cand = sample.candidateType;
  if (sample.protocol) frame.proto = sample.protocol;
  return frame;
}

/** Report the samples of each connection of `session` (watchPeers) over `signaling`. */
export function reportStats(session, signaling) {
  session.watchPeers((peer, stats) => {
    if (!stats) return;
    let count = 0;
    stats.subscribe((sample) => {
      // Before the connection has a path there is nothing to measure.
      if (!sample.candidateType) return;
      // The first sample on a path says how the call connected; then one in EVERY.
      count += 1;
      if (count % EVERY === 1) signaling.send("stats", summary(sample));
    });
  });
}
