"""Both sides of a call renegotiating at the same moment always settle."""

import time

import pytest

from tests.browser.test_call import connect_call

pytestmark = pytest.mark.browser

ROUNDS = 8
SETTLE_SECONDS = 5
# Both pages act at one wall-clock time, far enough ahead for both to hear of it.
LEAD_SECONDS = 0.25

# Adds a receive-only transceiver to the page's live connection at `at` (ms
# since the epoch): both pages share the clock, so both offer at once.
ADD_TRANSCEIVER_AT = """
([kind, at]) => {
  const pc = window.__peers.filter((p) => p.connectionState !== "closed").at(-1);
  setTimeout(() => pc.addTransceiver(kind, {direction: "recvonly"}), at - Date.now());
}
"""
NEGOTIATED = """
() => {
  const pc = window.__peers.filter((p) => p.connectionState !== "closed").at(-1);
  return {
    state: pc.signalingState,
    transceivers: pc.getTransceivers().map((t) => [t.mid, t.currentDirection]),
  };
}
"""


def settled(desk: dict, caller: dict, count: int) -> bool:
    """Both stable, with the same `count` transceivers, each negotiated."""
    sides = (desk, caller)
    return (
        all(side["state"] == "stable" for side in sides)
        and all(len(side["transceivers"]) == count for side in sides)
        and all(
            mid and direction
            for side in sides
            for mid, direction in side["transceivers"]
        )
        and {mid for mid, _ in desk["transceivers"]}
        == {mid for mid, _ in caller["transceivers"]}
    )


def test_transceivers_added_on_both_sides_at_once_are_negotiated(new_page, consultant):
    desk, caller = connect_call(new_page, consultant)
    count = len(desk.evaluate(NEGOTIATED)["transceivers"])

    for round_ in range(1, ROUNDS + 1):
        at = (time.time() + LEAD_SECONDS) * 1000
        desk.evaluate(ADD_TRANSCEIVER_AT, ["video", at])
        caller.evaluate(ADD_TRANSCEIVER_AT, ["audio", at])
        count += 2

        deadline = time.monotonic() + LEAD_SECONDS + SETTLE_SECONDS
        while True:
            sides = desk.evaluate(NEGOTIATED), caller.evaluate(NEGOTIATED)
            if settled(*sides, count):
                break
            if time.monotonic() > deadline:
                pytest.fail(f"round {round_} did not settle: desk, caller = {sides}")
            time.sleep(0.05)
