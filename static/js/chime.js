/**
 * Short alert tones made with Web Audio, so no sound file is fetched.
 *
 * Browsers only let a page make sound after the user has interacted with it:
 * `unlockSound()` is called from the first click or key press.
 */

let context = null;

export function unlockSound() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return;
  if (!context) context = new Context();
  if (context.state === "suspended") context.resume().catch(() => {});
}

export function unlockOnFirstGesture() {
  const unlock = () => unlockSound();
  window.addEventListener("pointerdown", unlock, { once: true, capture: true });
  window.addEventListener("keydown", unlock, { once: true, capture: true });
}

/** Play notes (Hz) one after the other. */
export function chime(notes = [660, 880]) {
  if (!context || context.state !== "running") return;
  const start = context.currentTime;
  notes.forEach((frequency, index) => {
    const at = start + index * 0.18;
    const osc = context.createOscillator();
    const gain = context.createGain();
    osc.type = "sine";
    osc.frequency.value = frequency;
    gain.gain.setValueAtTime(0.0001, at);
    gain.gain.exponentialRampToValueAtTime(0.3, at + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.3);
    osc.connect(gain).connect(context.destination);
    osc.start(at);
    osc.stop(at + 0.32);
  });
}
