"""The pages: the lobby, a caller's call page and the consultant's desk."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, render

from .models import Consultant
from .selectors import consultants_for_lobby


def lobby(request):
    return render(
        request,
        "consult/lobby.html",
        {"consultants": consultants_for_lobby(with_title=True)},
    )


def call(request, slug):
    consultant = get_object_or_404(Consultant.objects.serving(), slug=slug)
    return render(request, "consult/call.html", {"consultant": consultant})


@login_required
def desk(request):
    consultant = Consultant.objects.filter(user=request.user).first()
    if consultant is None:
        raise PermissionDenied("Only consultants have a desk.")
    return render(request, "consult/desk.html", {"consultant": consultant})
