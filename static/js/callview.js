/**
 * The in-call part both pages share: videos, mute and camera buttons, the
 * connection line and the text chat over an RTCDataChannel.
 *
 * Everything the other side sends is written with textContent, never as HTML.
 */

import { watchLevel } from "./audiolevel.js";
import { gettext } from "./i18n.js";

const MAX_CHAT_CHARS = 1000;
// A level above this reads as speaking.
const SPEAKING_LEVEL = 0.05;
const CONNECTION_TEXT = {
  new: gettext("Setting up…"),
  connecting: gettext("Connecting…"),
  connected: gettext("Connected"),
  disconnected: gettext("Connection unstable…"),
  failed: gettext("Connection lost, retrying…"),
  closed: gettext("Closed"),
};

export class CallView {
  constructor(root, { otherName }) {
    this.root = root;
    this.otherName = otherName;
    this.localVideo = root.querySelector('[data-testid="local-video"]');
    this.remoteVideo = root.querySelector('[data-testid="remote-video"]');
    this.remoteNote = root.querySelector("[data-remote-note]");
    this.localNote = root.querySelector("[data-local-note]");
    this.connection = root.querySelector("[data-connection]");
    this.muteButton = root.querySelector("[data-mute]");
    this.cameraButton = root.querySelector("[data-camera]");
    this.chatForm = root.querySelector("[data-chat]");
    this.chatInput = root.querySelector('[data-testid="chat-input"]');
    this.chatSend = root.querySelector('[data-testid="chat-send"]');
    this.chatLog = root.querySelector('[data-testid="chat-log"]');
    this.videos = root.querySelector("[data-videos]");
    this.audioView = root.querySelector("[data-audio-view]");
    this.stopLevels = [];
    this.chatKey = null;
    this.stream = null;
    this.channel = null;
    this.muted = false;
    this.cameraOff = false;
    this.muteButton.addEventListener("click", () => this.toggleMute());
    this.cameraButton.addEventListener("click", () => this.toggleCamera());
    this.chatForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.sendChat();
    });
    this.setChannel(null);
  }

  /** Show and control this stream (null: nothing to send). */
  useStream(stream) {
    this.stream = stream;
    this.localVideo.srcObject = stream;
    this.applyTrackState();
  }

  showRemote(track, stream) {
    if (!stream) {
      // A track sent without a stream: gather such tracks into one.
      stream = this.remoteVideo.srcObject || new MediaStream();
      stream.addTrack(track);
    }
    if (this.remoteVideo.srcObject !== stream) this.remoteVideo.srcObject = stream;
    const hasVideo = stream.getVideoTracks().length > 0;
    this.remoteNote.hidden = hasVideo;
    track.addEventListener("ended", () => {
      this.remoteNote.hidden = stream.getVideoTracks().some((t) => t.readyState === "live");
    });
    this.showAudioCall(stream);
  }

  /**
   * A call where neither side sends video reads as an audio call: names and
   * level meters instead of empty video frames.
   */
  showAudioCall(remote) {
    this.hideAudioCall();
    const local = this.stream;
    const noVideo = (s) => !s || s.getVideoTracks().length === 0;
    if (!remote || remote.getAudioTracks().length === 0 || !noVideo(local) || !noVideo(remote)) return;
    this.audioView.querySelector("[data-audio-other]").textContent = this.otherName();
    for (const [side, stream] of [["remote", remote], ["local", local]]) {
      const meter = this.audioView.querySelector(`[data-level="${side}"]`);
      const speaking = this.audioView.querySelector(`[data-speaking="${side}"]`);
      this.stopLevels.push(
        watchLevel(stream, (level) => {
          meter.value = level;
          speaking.hidden = level < SPEAKING_LEVEL;
        }),
      );
    }
    this.audioView.hidden = false;
    this.videos.hidden = true;
  }

  hideAudioCall() {
    for (const stop of this.stopLevels) stop();
    this.stopLevels = [];
    this.audioView.hidden = true;
    this.videos.hidden = false;
  }

  clearRemote() {
    this.remoteVideo.srcObject = null;
    this.remoteNote.hidden = false;
    this.hideAudioCall();
  }

  setConnection(state) {
    this.connection.textContent = CONNECTION_TEXT[state] || state;
  }

  toggleMute() {
    this.muted = !this.muted;
    this.applyTrackState();
  }

  toggleCamera() {
    this.cameraOff = !this.cameraOff;
    this.applyTrackState();
  }

  applyTrackState() {
    const audio = this.stream ? this.stream.getAudioTracks() : [];
    const video = this.stream ? this.stream.getVideoTracks() : [];
    for (const track of audio) track.enabled = !this.muted;
    for (const track of video) track.enabled = !this.cameraOff;
    this.localNote.hidden = video.some((t) => t.readyState === "live") && !this.cameraOff;
    this.muteButton.disabled = audio.length === 0;
    this.cameraButton.disabled = video.length === 0;
    this.muteButton.setAttribute("aria-pressed", String(this.muted));
    this.cameraButton.setAttribute("aria-pressed", String(this.cameraOff));
    this.muteButton.textContent = this.muted ? gettext("Unmute") : gettext("Mute");
    this.cameraButton.textContent = this.cameraOff ? gettext("Camera on") : gettext("Camera off");
  }

  setChannel(channel) {
    this.channel = channel;
    const ready = () => {
      const open = this.channel !== null && this.channel.readyState === "open";
      this.chatInput.disabled = !open;
      this.chatSend.disabled = !open;
    };
    if (channel) {
      channel.addEventListener("open", ready);
      channel.addEventListener("close", ready);
      channel.addEventListener("message", (event) => this.receiveChat(channel, event.data));
    }
    ready();
  }

  /**
   * Keep this consultation's chat in the tab's session storage, so that it
   * survives a reload of the page during the call (and shows again now);
   * `reset()` forgets it when the call is over. Never stored elsewhere.
   */
  keepChat(consultation) {
    this.chatKey = `consult.chat.${consultation}`;
    this.chatLog.replaceChildren();
    for (const line of readLines(this.chatKey)) this.addLine(line.who, line.text, line.kind, false);
  }

  /** The call is over: its chat is kept no longer. */
  forgetChat() {
    if (this.chatKey) sessionStorage.removeItem(this.chatKey);
    this.chatKey = null;
  }

  sendChat() {
    const text = this.chatInput.value.trim().slice(0, MAX_CHAT_CHARS);
    if (!text || !this.channel || this.channel.readyState !== "open") return;
    this.channel.send(JSON.stringify({ text }));
    this.addLine(gettext("You"), text, "mine");
    this.chatInput.value = "";
    this.chatInput.focus();
  }

  receiveChat(channel, raw) {
    if (channel !== this.channel) return;
    let text = "";
    try {
      text = String(JSON.parse(raw).text || "");
    } catch {
      return;
    }
    if (text) this.addLine(this.otherName(), text.slice(0, MAX_CHAT_CHARS), "theirs");
  }

  addLine(who, text, kind, keep = true) {
    if (keep && this.chatKey) {
      const lines = readLines(this.chatKey);
      lines.push({ who, text, kind });
      try {
        sessionStorage.setItem(this.chatKey, JSON.stringify(lines));
      } catch {
        // Storage full or refused: the chat still works, it just will not survive a reload.
      }
    }
    const item = document.createElement("li");
    item.className = kind;
    // Each in its own <bdi>: a right-to-left name or message must not
    // reorder the line around it.
    const name = document.createElement("strong");
    name.append(bdi(who));
    item.append(name, ": ", bdi(text));
    this.chatLog.append(item);
    this.chatLog.scrollTop = this.chatLog.scrollHeight;
  }

  /** Forget the last call: chat, remote video, mute and camera state. */
  reset() {
    this.chatLog.replaceChildren();
    this.clearRemote();
    this.muted = false;
    this.cameraOff = false;
    this.setChannel(null);
    this.useStream(null);
    this.connection.textContent = "";
  }
}

function readLines(key) {
  try {
    const lines = JSON.parse(sessionStorage.getItem(key) || "[]");
    return Array.isArray(lines) ? lines.filter((l) => l && typeof l.text === "string") : [];
  } catch {
    return [];
  }
}

function bdi(text) {
  const element = document.createElement("bdi");
  element.textContent = text;
  return element;
}

/**
 * A name (or any user text) inside a sentence, marked with FSI and PDI so
 * that a right-to-left name does not reorder the words around it; `write`
 * turns each marked part into a <bdi>.
 */
export function isolate(text) {
  return `\u2068${text}\u2069`;
}

const ISOLATED = /\u2068([^\u2068\u2069]*)\u2069/;

/** Set an element's text, each `isolate`d part in a <bdi> of its own. */
export function write(element, text) {
  const parts = String(text ?? "").split(ISOLATED);
  // split() with a group alternates: plain text, isolated text, plain text...
  element.replaceChildren(...parts.map((part, i) => (i % 2 ? bdi(part) : part)));
}
