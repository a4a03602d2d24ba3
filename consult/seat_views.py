"""The link in a "your turn is near" e-mail: back to the caller's seat."""

from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from consult import errors
from consult.services.notify import seat_from_link, seat_return


def seat_key(slug: str) -> str:
    """Where the return view leaves a fresh resume token for the call page."""
    return f"consult.seat.{slug}"


@never_cache
@require_http_methods(["GET", "POST"])
def return_to_seat(request, slug: str, signed: str):
    """GET: a page with one button (mail scanners follow links, and must not
    take the seat). POST: a fresh resume token for the seat, handed to the
    call page through the session (`views.call`), which resumes with it."""
    if request.method == "GET":
        try:
            seat_from_link(signed)
        except errors.BadToken:
            return render(request, "consult/return.html", {"gone": True}, status=410)
        return render(request, "consult/return.html", {"gone": False})
    try:
        slug, token = seat_return(signed=signed).value
    except errors.BadToken:
        return render(request, "consult/return.html", {"gone": True}, status=410)
    request.session[seat_key(slug)] = token
    return redirect("call", slug=slug)
