/**
 * The desk's list of callers who asked to be called back (`queue` frames'
 * `callbacks`), each with a "Done" button that removes it (`callback_done`).
 * Everything is written as text.
 */

import { isolate, write } from "./callview.js";
import { gettext, interpolate, ngettext } from "./i18n.js";

export class CallbackList {
  constructor(section, signaling) {
    this.section = section;
    this.list = section.querySelector('[data-testid="callback-list"]');
    signaling.on("queue", (frame) => this.render(frame.callbacks || []));
    this.send = (id) => signaling.send("callback_done", { callback: id });
  }

  render(callbacks) {
    const items = callbacks.map((callback) => {
      const item = document.createElement("li");
      item.className = "callback-item";
      const who = document.createElement("strong");
      write(who, isolate(callback.name));
      const contact = document.createElement("span");
      contact.className = "contact";
      write(contact, isolate(callback.contact));
      const minutes = Math.floor(callback.waiting_seconds / 60);
      const ago = ngettext("asked %(minutes)s minute ago", "asked %(minutes)s minutes ago", minutes);
      const since = document.createElement("span");
      since.className = "waited";
      since.textContent = interpolate(ago, { minutes });
      item.append(who, " ", contact, " ", since);
      if (callback.reason) {
        const reason = document.createElement("p");
        reason.className = "reason";
        reason.textContent = callback.reason;
        item.append(reason);
      }
      const done = document.createElement("button");
      done.type = "button";
      done.textContent = gettext("Done");
      done.setAttribute("aria-label", interpolate(gettext("Done: called back %(name)s"), { name: isolate(callback.name) }));
      done.addEventListener("click", () => this.send(callback.callback));
      item.append(done);
      return item;
    });
    this.list.replaceChildren(...items);
    this.section.hidden = items.length === 0;
  }
}
