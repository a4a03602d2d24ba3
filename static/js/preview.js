/**
 * The caller's own camera and mic: opened as the join form asks, one opening
 * at a time, shown in the call view, with the devices listed in the pickers.
 */

import { gettext, interpolate } from "./i18n.js";
import { explain, listDevices, mediaSupported, openBest, stopStream } from "./media.js";

export class Preview {
  /**
   * `audioOnly()` says whether the next opening leaves the camera off;
   * `audioOnlyBox` (the form's checkbox) also disables the camera picker.
   */
  constructor({ view, cameraSelect, micSelect, errorLine, audioOnlyBox, audioOnly }) {
    this.view = view;
    this.cameraSelect = cameraSelect;
    this.micSelect = micSelect;
    this.errorLine = errorLine;
    this.audioOnlyBox = audioOnlyBox;
    this.audioOnly = audioOnly;
    this.stream = null;
    this.task = Promise.resolve();
  }

  /** (Re)open the camera and mic; every opening goes through here. */
  open() {
    this.task = this.task.then(() => this.reopen()).catch((error) => console.error(error));
    return this.task;
  }

  /** Resolves once the opening in flight, if any, is done. */
  settled() {
    return this.task;
  }

  /** Stop the camera and mic and show nothing. */
  stop() {
    stopStream(this.stream);
    this.stream = null;
    this.view.useStream(null);
  }

  async reopen() {
    if (!mediaSupported()) return this.showError(explain(null));
    stopStream(this.stream);
    const [opened, error] = await openBest({
      video: !this.audioOnly(),
      cameraId: this.cameraSelect.value,
      micId: this.micSelect.value,
    });
    this.stream = opened;
    this.view.useStream(opened);
    this.showError(error ? explain(error) : "");
    await this.fillPickers();
  }

  showError(text) {
    this.errorLine.textContent = text;
    this.errorLine.hidden = !text;
  }

  async fillPickers() {
    const { cameras, mics } = await listDevices();
    const stream = this.stream;
    fill(this.cameraSelect, cameras, stream && stream.getVideoTracks()[0]);
    fill(this.micSelect, mics, stream && stream.getAudioTracks()[0]);
    this.cameraSelect.disabled = this.audioOnlyBox.checked || cameras.length === 0;
  }
}

function fill(select, devices, track) {
  const current = track ? track.getSettings().deviceId : select.value;
  select.replaceChildren(
    ...devices.map((device, index) => {
      const option = document.createElement("option");
      option.value = device.deviceId;
      option.textContent = device.label || interpolate(gettext("Device %(number)s"), { number: index + 1 });
      return option;
    }),
  );
  if (current) select.value = current;
}
