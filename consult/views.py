"""The pages: the lobby, a caller's call page and the consultant's desk."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, render
from django.utils.cache import add_never_cache_headers

from .models import Consultant
from .seat_views import seat_key
from .selectors import consultants_for_lobby


def lobby(request):
    return render(
        request,
        "consult/lobby.html",
        {"consultants": consultants_for_lobby(with_title=True)},
    )


def call(request, slug):
    consultant = get_object_or_404(Consultant.objects.serving(), slug=slug)
    # Left by the link of a "your turn is near" e-mail (seat_views): the page
    # resumes the seat with it, once.
    resume_token = request.session.pop(seat_key(slug), "")
    context = {"consultant": consultant, "resume_token": resume_token}
    response = render(request, "consult/call.html", context)
    if resume_token:
        add_never_cache_headers(response)
    return response


@login_required
def desk(request):
    consultant = Consultant.objects.filter(user=request.user).first()
    if consultant is None:
        raise PermissionDenied("Only consultants have a desk.")
    # Whom a waiting caller may be transferred to; the server checks again.
    colleagues = Consultant.objects.serving().exclude(pk=consultant.pk)
    context = {"consultant": consultant, "colleagues": colleagues}
    return render(request, "consult/desk.html", context)
