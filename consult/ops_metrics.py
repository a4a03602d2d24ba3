"""The operations figures that fit Prometheus, read from the history at each
scrape (so every server process reports the same totals): consultations by
outcome, and histograms of the wait and of accept-to-media."""

from datetime import timedelta

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

from .models import Consultation

WAIT_BUCKETS = (10, 30, 60, 120, 300, 600, 1800)
MEDIA_BUCKETS = (0.25, 0.5, 1, 2, 5, 10)


def _histogram(
    name: str, documentation: str, rows, span, edges
) -> HistogramMetricFamily:
    spans = rows.annotate(span=ExpressionWrapper(span, output_field=DurationField()))
    below = {
        f"le{i}": Count("pk", filter=Q(span__lte=timedelta(seconds=edge)))
        for i, edge in enumerate(edges)
    }
    got = spans.aggregate(count=Count("pk"), total=Sum("span"), **below)
    # Labelled as prometheus_client's own histograms label them ("10.0").
    buckets = [(floatToGoString(edge), got[f"le{i}"]) for i, edge in enumerate(edges)]
    buckets.append(("+Inf", got["count"]))
    total = got["total"].total_seconds() if got["total"] else 0.0
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=total)


class OperationsCollector:
    def collect(self):
        ended = CounterMetricFamily(
            "consult_consultations_ended",
            "Consultations (requests and calls) ended, by outcome.",
            labels=["outcome"],
        )
        counts = (
            Consultation.objects.exclude(outcome=Consultation.Outcome.ACTIVE)
            .values_list("outcome")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for outcome, n in counts:
            ended.add_metric([outcome], n)
        yield ended
        accepted = Consultation.objects.filter(accepted_at__isnull=False)
        yield _histogram(
            "consult_wait_seconds",
            "From the request to the accept, of callers who were served.",
            accepted,
            F("accepted_at") - F("requested_at"),
            WAIT_BUCKETS,
        )
        yield _histogram(
            "consult_accept_to_media_seconds",
            "From the accept to media flowing, of calls whose media connected.",
            accepted.filter(media_connected_at__isnull=False),
            F("media_connected_at") - F("accepted_at"),
            MEDIA_BUCKETS,
        )
