"""Dates and times in the viewer's own time zone."""

import zoneinfo

from django.utils import timezone

# Set by static/js/timezone.js to the browser's IANA zone name.
COOKIE = "consult_tz"


class ViewerTimeZoneMiddleware:
    """Activate the zone the browser named (cookie `consult_tz`) for this
    request; an unknown or missing name leaves settings.TIME_ZONE."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        zone = viewer_zone(request.COOKIES.get(COOKIE, ""))
        if zone is None:
            timezone.deactivate()
        else:
            timezone.activate(zone)
        return self.get_response(request)


def viewer_zone(name: str) -> zoneinfo.ZoneInfo | None:
    """The zone called `name` (e.g. "Asia/Seoul"), or None if there is none such."""
    if not name or len(name) > 64:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
