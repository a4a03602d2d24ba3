/**
 * How loud a stream's audio is, sampled ten times a second: the level meter of
 * an audio call ("who is speaking").
 */

let context = null;

/** Call `onLevel(level)` (0 to 1, RMS) every 100 ms until the returned stop(). */
export function watchLevel(stream, onLevel) {
  if (!stream || stream.getAudioTracks().length === 0 || !window.AudioContext) return () => {};
  context = context || new AudioContext();
  // A context made before any click starts suspended; resume when allowed.
  if (context.state === "suspended") context.resume().catch(() => {});
  const source = context.createMediaStreamSource(stream);
  const analyser = context.createAnalyser();
  analyser.fftSize = 512;
  source.connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  const timer = setInterval(() => {
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const sample of samples) sum += sample * sample;
    onLevel(Math.min(1, Math.sqrt(sum / samples.length) * 4));
  }, 100);
  return () => {
    clearInterval(timer);
    source.disconnect();
  };
}
