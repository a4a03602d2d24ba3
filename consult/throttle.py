"""Login throttling: too many failed logins lock out that username from that address.

Failures are counted in the cache (Redis in production, shared by every
process) per username and address, and per address alone with a wider limit
so that one address cannot try a password on every username. Counting per
username and address, not per username alone, keeps an attacker from locking
a consultant out of their own desk.
"""

import hashlib

from django.conf import settings
from django.contrib.auth.views import LoginView
from django.core.cache import cache

from . import logs
from .addresses import request_address
from .observability import LOGIN_LOCKOUTS

# The address alone may fail this many times the per-username limit.
ADDRESS_FACTOR = 4


def _keys(username: str, address: str) -> list[tuple[str, int]]:
    limit = settings.CONSULT_LOGIN_MAX_FAILURES
    pair = hashlib.sha256(f"{username.lower()}\0{address}".encode()).hexdigest()
    return [
        (f"login-failures:user:{pair}", limit),
        (f"login-failures:addr:{address}", limit * ADDRESS_FACTOR),
    ]


def locked_out(username: str, address: str) -> bool:
    return any(cache.get(key, 0) >= limit for key, limit in _keys(username, address))


def record_failure(username: str, address: str) -> None:
    for key, _ in _keys(username, address):
        # add() starts the window; later failures within it do not extend it.
        cache.add(key, 0, timeout=settings.CONSULT_LOGIN_LOCKOUT_SECONDS)
        try:
            cache.incr(key)
        except ValueError:
            cache.set(key, 1, timeout=settings.CONSULT_LOGIN_LOCKOUT_SECONDS)


def forget_failures(username: str, address: str) -> None:
    cache.delete(_keys(username, address)[0][0])


class ThrottledLoginView(LoginView):
    """Django's login view that answers 429 once an address has failed too often."""

    def post(self, request, *args, **kwargs):
        self.username = request.POST.get("username", "")[:150]
        self.address = request_address(request)
        if locked_out(self.username, self.address):
            LOGIN_LOCKOUTS.inc()
            logs.event("login.locked", username=self.username, address=self.address)
            # Unbound: a bound form would try the password while locked out.
            form = self.get_form_class()(
                self.request, initial={"username": self.username}
            )
            form.cleaned_data = {}  # add_error() reads it; unbound forms lack it
            form.add_error(None, "Too many failed logins. Try again later.")
            response = self.form_invalid(form, count=False)
            response.status_code = 429
            return response
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form, count=True):
        if count:
            record_failure(self.username, self.address)
            logs.event("login.failed", username=self.username, address=self.address)
        return super().form_invalid(form)

    def form_valid(self, form):
        forget_failures(self.username, self.address)
        logs.event("login.ok", username=self.username, address=self.address)
        return super().form_valid(form)
