"""Admission control: a process whose event loop lags says no to new work.

Every relay, answer and hang-up of every call in this process waits its turn on
one event loop. When more work arrives than the process can do, each turn of
the loop comes later, and the calls already set up slow down with the new ones
(issue 18: p50 relay latency ~200 ms at 50 pairs flat out). So the process
watches how late its loop runs and, past a bound, answers new joins and new
desks `try_later` with a retry hint (docs/protocol.md, "Admission under
saturation"), while the
calls it has keep going.

The measure: a task sleeps `SAMPLE_SECONDS` again and again; how much later
than asked it wakes is the time the loop spent on other work it could not
interleave (the standard loop-lag probe, as in Node's `monitorEventLoopDelay`).
The samples are smoothed by an exponentially weighted moving average: one
collector pause or one big fan-out push moves it by a third of its length and
it decays within a few samples (a whole second's stall refuses for about half
a second after it), while lag that lasts moves it all the way. A maximum over
a window would refuse joins for the whole window after any single stall.
Hysteresis: refusing starts when the average passes the bound and stops only
once it is under half the bound, so that a process at the edge does not flap
between the two on every sample.
"""

import asyncio
import logging
import time

from django.conf import settings

from .metrics import ADMISSION_LAG, ADMISSION_REFUSED

log = logging.getLogger(__name__)

# How often the loop is probed (seconds): short enough to see lag within a
# fraction of a second, long enough to cost nothing (20 wake-ups a second).
SAMPLE_SECONDS = 0.05
# Weight of the newest sample in the average: lag that lasts 5 samples
# (a quarter of a second when idle) brings it past 80 % of that lag.
WEIGHT = 0.3


class Admission:
    """This process's loop-lag monitor, and its answer to new work."""

    def __init__(self):
        self.lag_ms = 0.0  # the smoothed lag, milliseconds
        self.refusing = False

    def check(self) -> int | None:
        """None: admit new work; else the seconds a client should wait (whole).

        The rule: refuse while the smoothed loop lag is over
        `CONSULT_ADMISSION_LAG_MS` (0 turns admission control off), until it is
        under half of that again. The hint is `CONSULT_ADMISSION_RETRY_SECONDS`.
        """
        if not self.refusing:
            return None
        return settings.CONSULT_ADMISSION_RETRY_SECONDS

    def turn_away(self, what: str) -> int | None:
        """`check()`, counting `what` (`join`, `callback`, `desk`) as turned away
        when it says to wait.

        The refusal itself is logged where it is answered: it is an `error`
        frame (`try_later`), which the events log and `consult_errors` record.
        """
        retry_after = self.check()
        if retry_after is not None:
            ADMISSION_REFUSED.labels(what).inc()
        return retry_after

    def sample(self, lag_seconds: float) -> None:
        """Fold one wake-up delay (seconds) into the average and the decision."""
        bound = settings.CONSULT_ADMISSION_LAG_MS
        self.lag_ms += WEIGHT * (1000 * lag_seconds - self.lag_ms)
        ADMISSION_LAG.set(self.lag_ms / 1000)
        if not bound:
            self.refusing = False
        elif not self.refusing and self.lag_ms > bound:
            self.refusing = True
            log.warning("event loop lags %.0f ms: refusing new work", self.lag_ms)
        elif self.refusing and self.lag_ms < bound / 2:
            self.refusing = False
            log.warning("event loop lags %.0f ms: admitting again", self.lag_ms)

    async def run(self) -> None:
        """Probe the running loop until cancelled."""
        while True:
            asked = time.monotonic()
            await asyncio.sleep(SAMPLE_SECONDS)
            self.sample(max(0.0, time.monotonic() - asked - SAMPLE_SECONDS))
