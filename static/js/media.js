/** Camera and microphone: opening the chosen devices, and saying why they failed. */

import { gettext } from "./i18n.js";

export function mediaSupported() {
  return Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
}

export async function openMedia({ video = true, cameraId = "", micId = "" } = {}) {
  const audio = micId ? { deviceId: { exact: micId } } : true;
  const camera = cameraId ? { deviceId: { exact: cameraId } } : true;
  return navigator.mediaDevices.getUserMedia({ audio, video: video ? camera : false });
}

/** The camera and mic, falling back to the mic alone: [stream or null, error or null]. */
export async function openBest(options) {
  try {
    return [await openMedia(options), null];
  } catch (error) {
    if (!options.video) return [null, error];
    try {
      return [await openMedia({ ...options, video: false }), error];
    } catch {
      return [null, error];
    }
  }
}

export function explain(error) {
  if (!mediaSupported()) {
    return gettext("This browser cannot use a camera here (the page needs HTTPS).");
  }
  switch (error && error.name) {
    case "NotAllowedError":
    case "SecurityError":
      return gettext(
        "The camera or microphone was refused. Allow them for this site in the browser's address bar, then press “Check camera and mic”. You can still join: the consultant will hear and see you only once allowed.",
      );
    case "NotFoundError":
      return gettext("No camera or microphone was found.");
    case "NotReadableError":
      return gettext("The camera or microphone is in use by another program.");
    case "OverconstrainedError":
      return gettext("The chosen device is not available; pick another.");
    default:
      return gettext("The camera or microphone could not be opened.");
  }
}

export async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  return {
    cameras: devices.filter((d) => d.kind === "videoinput"),
    mics: devices.filter((d) => d.kind === "audioinput"),
  };
}

export function stopStream(stream) {
  if (stream) for (const track of stream.getTracks()) track.stop();
}
