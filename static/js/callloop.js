/**
 * The one stats loop of a call session: a StatsLoop (callstats.js) on the
 * connection while its media flows, and the features watching it (the stats
 * report, a watchdog, a quality badge). Watchers stay across connections: a
 * reconnect starts a loop on the new connection and they keep hearing.
 */

import { StatsLoop } from "./callstats.js";

export class CallStats {
  constructor() {
    this.loop = null;
    this.pc = null;
    this.watchers = new Set();
  }

  /** Hear every sample of the call's current connection; returns an unwatch function. */
  watch(fn) {
    this.watchers.add(fn);
    return () => this.watchers.delete(fn);
  }

  /** Sample `pc` from now on (once per connection: a second call is a no-op). */
  start(pc) {
    if (this.pc === pc) return;
    this.stop();
    this.pc = pc;
    this.loop = new StatsLoop(pc);
    this.loop.subscribe((sample) => {
      for (const fn of this.watchers) fn(sample);
    });
  }

  stop() {
    if (this.loop) this.loop.stop();
    this.loop = null;
    this.pc = null;
  }
}
