"""Proof of work for joins to a queue under pressure: ALTCHA, through django-altcha.

django-altcha makes the challenges (signed with `ALTCHA_HMAC_KEY`, expiring
after `ALTCHA_CHALLENGE_EXPIRE`) and names the cache that remembers redeemed
ones; `altcha` checks a solution. A solution is good once: it is marked used
with the cache's atomic `add` (Redis's SET NX when Redis is the cache), so two
joins racing with one solution cannot both pass (django-altcha's own form
field reads, then writes). The page solves a challenge with ALTCHA's widget
(static/vendor/altcha); docs/protocol.md, "Join limits", has the exchange.
"""

import base64
import json
import logging

import altcha
from django.conf import settings
from django_altcha import (
    get_altcha_challenge,
    get_cache,
    get_challenge_expire_seconds,
    get_hmac_key,
)

log = logging.getLogger(__name__)

# Bounds what a client may make us decode (a solution is about 300 bytes).
MAX_SOLUTION_CHARS = 2_000


def challenge() -> dict:
    """A new challenge, as ALTCHA's widget takes it (`challengejson`)."""
    made = get_altcha_challenge(max_number=settings.CONSULT_JOIN_CHALLENGE_MAX_NUMBER)
    return made.to_dict()


def redeem(solution: str) -> bool:
    """Whether `solution` (the widget's base64 payload) solves one of our
    challenges, unexpired and never redeemed before; it is used up either way."""
    if not solution or len(solution) > MAX_SOLUTION_CHARS:
        return False
    try:
        ok, why = altcha.verify_solution(
            payload=solution, hmac_key=get_hmac_key(), check_expires=True
        )
        if not ok:
            log.info("proof of work refused: %s", why or "wrong solution")
            return False
        solved = json.loads(base64.b64decode(solution))["challenge"]
    except Exception as error:  # whatever a client made up
        log.info("proof of work refused: %r", error)
        return False
    # Only the first redeemer adds the key: a replay finds it there.
    first = get_cache().add(
        f"altcha-used:{solved}", True, timeout=get_challenge_expire_seconds()
    )
    if not first:
        log.info("proof of work refused: already used")
    return bool(first)
