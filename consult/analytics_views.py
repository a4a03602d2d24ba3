"""The analytics page of the admin: the operations figures of a period, for one
consultant or all, in plots with their numbers (docs/operations.md)."""

from datetime import date, datetime, time, timedelta

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Avg
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .analytics import Figures, Period, figures, history
from .models import CallFeedback, Consultant, Consultation
from .plots import Plot, bar_plot, number

DEFAULT_DAYS = 7
MAX_DAYS = 366
# Dates a period may use: far enough from date.min and date.max that the
# arithmetic below (a default start, the day after the end) never overflows.
EARLIEST, LATEST = date(2000, 1, 1), date(2999, 12, 31)


class PeriodForm(forms.Form):
    start = forms.DateField(
        label=gettext_lazy("From"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    end = forms.DateField(
        label=gettext_lazy("To (inclusive)"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    consultant = forms.ModelChoiceField(
        Consultant.objects.all(),
        label=gettext_lazy("Consultant"),
        required=False,
        empty_label=gettext_lazy("All consultants"),
    )
    by = forms.ChoiceField(
        label=gettext_lazy("Trend by"),
        choices=[("day", gettext_lazy("day")), ("hour", gettext_lazy("hour"))],
        required=False,
    )

    def clean(self):
        data = super().clean()
        today = timezone.localdate()
        for field in ("start", "end"):
            if data.get(field) and not EARLIEST <= data[field] <= LATEST:
                raise forms.ValidationError(
                    _("Choose dates between %(earliest)s and %(latest)s.")
                    % {"earliest": EARLIEST, "latest": LATEST}
                )
        end = data.get("end") or today
        start = data.get("start") or end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            raise forms.ValidationError(_("The period must start before it ends."))
        if (end - start).days >= MAX_DAYS:
            raise forms.ValidationError(_("Choose a period of at most a year."))
        data.update(start=start, end=end, by=data.get("by") or "day")
        return data

    def period(self) -> Period:
        data = self.cleaned_data
        zone = timezone.get_current_timezone()
        consultant = data.get("consultant")
        return Period(
            start=datetime.combine(data["start"], time.min, tzinfo=zone),
            end=datetime.combine(
                data["end"] + timedelta(days=1), time.min, tzinfo=zone
            ),
            consultant_id=consultant.pk if consultant else None,
        )


def _plots(got: Figures, by: str) -> list[Plot]:
    fmt = "%Y-%m-%d %H:00" if by == "hour" else "%Y-%m-%d"
    rating = _("rating")
    # The period's unit and each outcome in the page's words, not the stored code.
    unit = _("hour") if by == "hour" else _("day")
    outcome = dict(Consultation.Outcome.choices)
    return [
        bar_plot(
            metric="wait-trend",
            title=_("Waiting time by %(by)s (p50 and p90)") % {"by": unit},
            unit="s",
            series=["p50", "p90"],
            rows=[(start.strftime(fmt), [s.p50, s.p90]) for start, s in got.wait_trend],
        ),
        bar_plot(
            metric="abandonment",
            title=_("Callers who left before being served, by how long they waited"),
            unit=_("callers"),
            series=[_("left")],
            rows=[(label, [n]) for label, n in got.abandoned_by_wait],
        ),
        bar_plot(
            metric="refusals",
            title=_("Refusals by reason"),
            unit=_("callers"),
            series=[_("refused")],
            rows=[(reason or _("(none)"), [n]) for reason, n in got.refusal_reasons],
        ),
        bar_plot(
            metric="outcomes",
            title=_("Requests by outcome"),
            unit=_("requests"),
            series=[_("requests")],
            rows=sorted((str(outcome.get(k, k)), [v]) for k, v in got.outcomes.items()),
        ),
        bar_plot(
            metric="talk-time",
            title=_("Talk time"),
            unit=_("calls"),
            series=[_("calls")],
            rows=[(label, [n]) for label, n in got.talk_buckets],
        ),
        bar_plot(
            metric="accept-to-media",
            title=_("From accept to media flowing"),
            unit=_("calls"),
            series=[_("calls")],
            rows=[(label, [n]) for label, n in got.media_buckets],
        ),
        bar_plot(
            metric="relayed",
            title=_("Measured calls, direct or relayed through TURN"),
            unit=_("calls"),
            series=[_("calls")],
            rows=[
                (_("direct"), [got.measured - got.relayed]),
                (_("relayed"), [got.relayed]),
            ],
        ),
        bar_plot(
            metric="rating-rtt",
            title=_("Median round-trip time by rating"),
            unit="ms",
            series=["RTT"],
            rows=[
                (f"{rating} {r['rating']}", [r["rtt_ms"]])
                for r in got.quality_by_rating
            ],
        ),
        bar_plot(
            metric="rating-loss",
            title=_("Mean packet loss by rating"),
            unit="%",
            series=[_("loss")],
            rows=[
                (f"{rating} {r['rating']}", [r["loss_pct"]])
                for r in got.quality_by_rating
            ],
        ),
    ]


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "—"


def _spread(spread) -> str:
    figures_ = (spread.p50, spread.p90, spread.max)
    return " / ".join(number(v) for v in figures_) + f" (n={spread.count})"


def _summary(got: Figures, period: Period) -> list[tuple[str, str]]:
    rated = CallFeedback.objects.filter(
        consultation__in=history(period), rating__isnull=False
    )
    rating = rated.aggregate(mean=Avg("rating"))["mean"]
    left = f"{got.abandoned} ({_share(got.abandoned, got.requests)})"
    failed = f"{got.failed} ({_share(got.failed, got.accepted)})"
    relayed = f"{got.relayed} / {got.measured} ({_share(got.relayed, got.measured)})"
    return [
        (_("Requests"), str(got.requests)),
        (_("Served (accepted)"), str(got.accepted)),
        (_("Left before being served"), left),
        (_("Refused"), str(got.refused)),
        (_("Failed to connect (of those accepted)"), failed),
        (_("Wait p50 / p90 / max (s)"), _spread(got.wait)),
        (_("Talk p50 / p90 / max (s)"), _spread(got.talk)),
        (_("Accept to media p50 / p90 / max (ms)"), _spread(got.accept_to_media)),
        (_("Relayed through TURN (of those measured)"), relayed),
        (_("Mean rating"), f"{rating:.2f} (n={rated.count()})" if rating else "—"),
    ]


def analytics(request):
    """GET: the figures of the chosen period (default: the last seven days)."""
    if not request.user.has_perm("consult.view_consultation"):
        raise PermissionDenied
    form = PeriodForm(request.GET or {})
    plots = summary = None
    if form.is_valid():
        period, by = form.period(), form.cleaned_data["by"]
        got = figures(period, by=by)
        plots, summary = _plots(got, by), _summary(got, period)
    context = {
        **admin.site.each_context(request),
        "title": _("Analytics"),
        "form": form,
        "plots": plots,
        "summary": summary,
    }
    return render(request, "admin/consult/analytics.html", context)
