"""The wait-range model: how long a waiting caller may still wait (docs/waits.md).

Pure functions of a consultant's recent handling times, so the same model runs
on the live queue (`selectors.wait_range_estimator`) and on a replayed history
(`bench/waits.py`, which measures how often the real wait fell in the range).

A caller at place `p` waits for the rest of the call in progress (if any) and
for `p - 1` whole calls of the callers ahead. Each whole call is drawn from the
consultant's last handling times; the rest of the call in progress from those
that lasted longer than it has so far, minus what has elapsed (or, for a call
longer than all of them, from the whole history again). The range is the
25th to 75th percentile of that sum: the empirical quartiles when one term
decides it, the normal approximation of a sum of independent terms otherwise.
"""

import math
import statistics
from dataclasses import dataclass

# The 75th percentile of the standard normal distribution: the quartiles of a
# normal sum lie this many standard deviations either side of its mean.
Z_QUARTILE = 0.6744897501960817

# Fewer handling times than this say too little about a consultant to give a range.
MIN_HISTORY = 3


@dataclass(frozen=True)
class WaitRange:
    """The 25th and 75th percentile of the wait, in whole seconds (low <= high)."""

    low_seconds: int
    high_seconds: int

    def as_frame(self) -> dict[str, int]:
        return {"low_seconds": self.low_seconds, "high_seconds": self.high_seconds}


NOW = WaitRange(0, 0)


def wait_range(
    *,
    handling_seconds: list[float],
    position: int,
    elapsed_seconds: float | None,
) -> WaitRange | None:
    """The range for the caller at `position` (1 = next), or None when unknown.

    `handling_seconds`: the consultant's recent calls, accept to end, in seconds.
    `elapsed_seconds`: how long the call in progress has lasted; None when the
    consultant is free. Place 1 with the consultant free is "any moment now"
    (`NOW`) whatever the history; otherwise fewer than `MIN_HISTORY` handling
    times give None ("not known yet") rather than a made-up default.
    Raises ValueError for a position below 1 or a negative time.
    """
    if position < 1:
        raise ValueError(f"position must be 1 or more, not {position}")
    if any(h < 0 for h in handling_seconds) or (elapsed_seconds or 0) < 0:
        raise ValueError("times must not be negative")
    ahead = position - 1
    if elapsed_seconds is None and ahead == 0:
        return NOW
    if len(handling_seconds) < MIN_HISTORY:
        return None
    terms: list[list[float]] = [list(handling_seconds)] * ahead
    if elapsed_seconds is not None:
        rest = [h - elapsed_seconds for h in handling_seconds if h > elapsed_seconds]
        # A call longer than any before it says nothing of when it ends: its
        # rest is taken to be like a whole call, not "any moment now".
        terms.append(rest or list(handling_seconds))
    if len(terms) == 1 and len(terms[0]) == 1:
        low = high = terms[0][0]
    elif len(terms) == 1:
        low, _, high = statistics.quantiles(terms[0], n=4, method="inclusive")
    else:
        mean = sum(statistics.fmean(t) for t in terms)
        spread = math.sqrt(sum(statistics.pvariance(t) for t in terms))
        low, high = mean - Z_QUARTILE * spread, mean + Z_QUARTILE * spread
    return WaitRange(max(0, math.floor(low)), max(0, math.ceil(high)))
