/**
 * Sends the server a compact summary of the call's quality every few seconds
 * (docs/protocol.md, `stats`): one sample in `EVERY`, rounded, unknown
 * figures left out. The server keeps per-call aggregates, not the samples.
 */

// The loop samples every 2 s; the server takes one summary per 2 s at most.
const EVERY = 2;

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

/** Report the samples of `stats` (a CallStats) over `signaling`. */
export function reportStats(stats, signaling) {
  let count = 0;
  stats.watch((sample) => {
    // The first sample has no rates yet; the second is the first with them.
    count += 1;
    if (count % EVERY === 0 || count === 1) signaling.send("stats", summary(sample));
  });
}
