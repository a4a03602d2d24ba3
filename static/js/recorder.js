/**
 * Recording on the desk (docs/recording.md). The consultant asks
 * (`record_request`); once the caller agrees (`recording` {state: "on"}) a
 * MediaRecorder records both voices, mixed with Web Audio (and the caller's
 * video when the server says so), and every few seconds a chunk is uploaded
 * with its sequence number, one at a time and in order, retried when the
 * network fails. After a reload the desk gets `recording` again with
 * `next_seq` and carries on as a new part (a new recorder writes a new
 * stream with its own header; the server joins the parts).
 */

import { write } from "./callview.js";
import { RecordingIndicator } from "./consent.js";
import { gettext } from "./i18n.js";

const CHUNK_MS = 2000;
const RETRIES = 6;
const FINISH_WAIT_MS = 4000;
const TYPES = ["audio/webm;codecs=opus", "audio/webm", "audio/mp4"];
const VIDEO_TYPES = ["video/webm;codecs=vp8,opus", "video/webm", "video/mp4"];
// Refusals that no retry can change: the recording is over for this desk.
const FINAL = {
  storage_unavailable: gettext("Recording stopped: the storage is unavailable. The call goes on."),
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function newPart() {
  const bytes = crypto.getRandomValues(new Uint8Array(9));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class DeskRecording {
  /** `view` is the desk's CallView: its local stream and remote video element. */
  constructor({ root, signaling, view }) {
    this.signaling = signaling;
    this.view = view;
    this.startButton = root.querySelector('[data-testid="record-start"]');
    this.stopButton = root.querySelector('[data-testid="record-stop"]');
    this.note = root.querySelector("[data-recording-note]");
    this.csrf = root.querySelector("[data-recording-csrf]").value;
    this.indicator = new RecordingIndicator(root);
    this.context = null;
    this.reset();
    this.startButton.addEventListener("click", () => this.ask());
    this.stopButton.addEventListener("click", () => this.stop());
    signaling.on("recording", (frame) => this.changed(frame));
  }

  reset() {
    this.dropRecorder();
    this.recording = null;
    this.video = false;
    this.nextSeq = 0;
    this.queue = [];
    this.uploading = null;
    this.mediaUp = this.mediaUp || false;
    this.indicator.show(false);
    this.startButton.hidden = false;
    this.startButton.disabled = false;
    this.stopButton.hidden = true;
  }

  say(text) {
    write(this.note, text);
  }

  ask() {
    // The click is the gesture that lets the page's audio context run.
    this.audioContext();
    this.startButton.disabled = true;
    this.say(gettext("Asking the caller…"));
    this.signaling.send("record_request");
  }

  changed(frame) {
    if (frame.state === "asked") {
      this.startButton.hidden = true;
      this.stopButton.hidden = false;
      this.say(gettext("Waiting for the caller's answer…"));
    } else if (frame.state === "on") {
      this.recording = frame.recording;
      this.video = Boolean(frame.video);
      if (Number.isInteger(frame.next_seq)) this.nextSeq = Math.max(this.nextSeq, frame.next_seq);
      this.startButton.hidden = true;
      this.stopButton.hidden = false;
      this.indicator.show(true);
      this.say(gettext("Recording."));
      this.begin();
    } else if (frame.state === "declined") {
      this.reset();
      this.say(gettext("The caller declined: the call is not recorded."));
    } else if (frame.state === "stopped") {
      const text =
        frame.reason === "storage_unavailable"
          ? FINAL.storage_unavailable
          : frame.by === "caller"
            ? gettext("The caller stopped the recording.")
            : gettext("The recording has stopped.");
      this.reset();
      this.say(text);
    }
  }

  /** The desk's call state: the recorder needs media flowing both ways. */
  media(state) {
    this.mediaUp = state === "in-call";
    if (!this.mediaUp || this.recording === null) return;
    const remote = this.view.remoteVideo.srcObject;
    // After the caller came back on a new connection, record the new one.
    if (this.recorder && this.recorder.source !== remote) this.dropRecorder({ flush: true });
    this.begin();
  }

  audioContext() {
    if (!this.context) this.context = new AudioContext();
    if (this.context.state === "suspended") this.context.resume();
    return this.context;
  }

  begin() {
    if (this.recorder || this.recording === null || !this.mediaUp) return;
    const context = this.audioContext();
    if (context.state === "suspended") {
      // A reloaded desk has had no gesture yet: the mix stays silent until one.
      this.say(gettext("Click anywhere on the page to continue recording."));
      if (!this.awaitingGesture) {
        this.awaitingGesture = true;
        const resume = () => {
          this.awaitingGesture = false;
          context.resume().then(() => this.begin());
        };
        document.addEventListener("pointerdown", resume, { once: true });
      }
      return;
    }
    const remote = this.view.remoteVideo.srcObject;
    const sink = context.createMediaStreamDestination();
    for (const stream of [this.view.stream, remote]) {
      const audio = stream ? stream.getAudioTracks() : [];
      if (audio.length) context.createMediaStreamSource(new MediaStream(audio)).connect(sink);
    }
    const tracks = sink.stream.getAudioTracks();
    const videos = this.video && remote ? remote.getVideoTracks() : [];
    const types = videos.length ? VIDEO_TYPES : TYPES;
    const mimeType = types.find((type) => MediaRecorder.isTypeSupported(type)) || "";
    const recorder = new MediaRecorder(new MediaStream([...tracks, ...videos]), { mimeType });
    recorder.source = remote;
    recorder.part = newPart();
    recorder.sink = sink;
    recorder.addEventListener("dataavailable", (event) => {
      if (event.data.size && !recorder.discard && this.recording !== null) {
        this.enqueue(event.data, recorder.part);
      }
    });
    recorder.start(CHUNK_MS);
    this.recorder = recorder;
    this.say(gettext("Recording."));
  }

  dropRecorder({ flush = false } = {}) {
    const recorder = this.recorder;
    this.recorder = null;
    if (!recorder) return null;
    const done = new Promise((resolve) => recorder.addEventListener("stop", resolve, { once: true }));
    recorder.discard = !flush;
    if (recorder.state === "inactive") return Promise.resolve();
    recorder.stop();
    return done;
  }

  enqueue(blob, part) {
    this.queue.push({ seq: this.nextSeq++, blob, part, recording: this.recording });
    if (!this.uploading) this.uploading = this.upload().finally(() => (this.uploading = null));
  }

  async upload() {
    while (this.queue.length) {
      const chunk = this.queue[0];
      const answer = await this.send(chunk);
      if (chunk !== this.queue[0]) return; // the recording was reset meanwhile
      if (answer !== "ok") {
        this.refused(answer);
        return;
      }
      this.queue.shift();
    }
  }

  /** "ok", or the refusal's code once retries are spent or no retry can help. */
  async send({ seq, blob, part, recording }) {
    for (let attempt = 0; ; attempt++) {
      let response = null;
      try {
        response = await fetch(`/recordings/${recording}/chunks/${seq}/`, {
          method: "POST",
          credentials: "same-origin",
          headers: { "X-CSRFToken": this.csrf, "X-Recording-Part": part, "Content-Type": blob.type || "audio/webm" },
          body: blob,
        });
      } catch {
        response = null; // the network: try again
      }
      if (response && response.ok) return "ok";
      const code = response ? ((await response.json().catch(() => ({}))).code || "refused") : "network";
      const retry = !response || response.status >= 500 && response.status !== 507;
      if (!retry || attempt >= RETRIES) return code;
      await sleep(500 * 2 ** attempt);
    }
  }

  refused(code) {
    const text =
      FINAL[code] || gettext("Recording stopped: the server no longer takes it. The call goes on.");
    this.reset();
    this.say(text);
  }

  /** Stop recording: the last chunk is uploaded before the server is told. */
  async stop() {
    this.stopButton.disabled = true;
    await this.finish();
    this.signaling.send("record_stop");
  }

  /** Flush what is recorded (before a stop or a hang-up), waiting a little at most. */
  async finish() {
    if (this.recording === null) return;
    const stopped = this.dropRecorder({ flush: true });
    const drained = (async () => {
      if (stopped) await stopped;
      while (this.uploading) await this.uploading;
    })();
    await Promise.race([drained, sleep(FINISH_WAIT_MS)]);
  }

  /** The call is over, or this desk let go of it. */
  callEnded() {
    this.reset();
    this.say("");
  }
}
