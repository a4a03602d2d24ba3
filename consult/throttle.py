"""Login throttling: django-axes, shared by every login view (ours and the admin's).

Failures are kept in the database (axes' `AccessAttempt`), so every server
process sees the same counts and a login never needs Redis. Two counts decide:

- per username and address: `AXES_FAILURE_LIMIT` failures lock that name out
  from that address (a consultant elsewhere still gets in);
- per address: `ADDRESS_FACTOR` times as many lock the address out, but only
  for the names that have failed from it. A colleague behind the same NAT who
  has not failed still gets in; a sprayer gets one guess per name, not five.

The username is counted as Django's login form normalises it (strip, NFKC),
so ` ada` and the fullwidth `ada` are `ada`. Admins unlock in the admin
(*Access attempts*: delete the rows) or with `manage.py axes_reset_username`
or `axes_reset_ip`.
"""

import unicodedata

from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username, get_cool_off
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models import Sum
from django.dispatch import receiver
from django.shortcuts import render

from . import logs
from .addresses import request_address
from .observability import LOGIN_LOCKOUTS

# The address alone may fail this many times the per-username limit.
ADDRESS_FACTOR = 4
USERNAME_MAX_LENGTH = 150


def login_username(request, credentials: dict | None = None) -> str:
    """The identity a login is for: the username as Django's login form cleans it."""
    if credentials is not None:
        raw = credentials.get("username")
    else:
        raw = request.POST.get("username")
    # forms.CharField strips, then UsernameField applies NFKC.
    name = unicodedata.normalize("NFKC", str(raw or "").strip())
    return name[:USERNAME_MAX_LENGTH]


class LoginThrottle(AxesDatabaseHandler):
    """axes' database handler, with the address-wide count weighed per name.

    `AXES_LOCKOUT_PARAMETERS` is `[["username", "ip_address"], "ip_address"]`:
    the failures of this name from this address, then of this address.
    """

    def get_failures(self, request, credentials: dict | None = None) -> int:
        """Failures of this login, on the scale of `AXES_FAILURE_LIMIT`."""
        pair, address = (
            attempts.aggregate(n=Sum("failures_since_start"))["n"] or 0
            for attempts in self.get_user_attempts(request, credentials)
        )
        if not pair:
            return 0  # a name that has not failed from here is never locked out
        return max(pair, address // ADDRESS_FACTOR)

    def reset_user_attempts(self, request, credentials: dict | None = None) -> int:
        """A success forgets this name's failures from this address, and only those.

        Forgetting the address's count too would let anyone with an account of
        their own wipe it between guesses.
        """
        pair = self.filter_user_attempts(request, credentials)[0]
        count, _ = pair.delete()
        return count


class ThrottleBackend(AxesStandaloneBackend):
    """axes' backend: refuses a locked-out login before any password is checked.

    Every login over HTTP passes its request (Django's LoginView and the
    admin's do); code without one (a shell, a test client's `login()`) has no
    client to throttle, and goes on to the next backend.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


def lockout_response(request, original_response=None, credentials=None):
    """The page of a refused login: 429, what happened and when to try again."""
    LOGIN_LOCKOUTS.inc()
    logs.event(
        "login.locked",
        username=get_client_username(request, credentials),
        address=request_address(request),
        path=request.path,
    )
    seconds = int(get_cool_off(request).total_seconds())
    response = render(
        request,
        "registration/locked_out.html",
        {"minutes": max(1, round(seconds / 60))},
        status=settings.AXES_HTTP_RESPONSE_CODE,
    )
    response["Retry-After"] = str(seconds)
    return response


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs):
    if request is not None:
        logs.event(
            "login.failed",
            username=login_username(request, credentials),
            address=request_address(request),
            path=request.path,
        )


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs):
    if request is not None:
        logs.event(
            "login.ok",
            username=user.get_username(),
            address=request_address(request),
            path=request.path,
        )
