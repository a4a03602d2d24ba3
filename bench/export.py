"""The CSV export's memory: `python -m bench.export --rows 100000`.

Fills the database that the environment names (SQLITE_PATH or DATABASE_URL: use
a scratch one, it is emptied) with `--rows` ended consultations, each with its
quality and feedback rows, then exports them through the admin's export view
and reads the whole stream, measuring with tracemalloc the peak of Python memory
allocated during the export. It does so for a tenth of the rows and for all of
them: a streamed export's peak stays flat as the history grows. For contrast it
measures the same rows read at once (`list()` of the query), which grows with
them. Prints one JSON object.
"""

import argparse
import json
import time
import tracemalloc

import django

BATCH = 5000


def seed(rows: int) -> None:
    from datetime import UTC, datetime, timedelta

    from django.contrib.auth import get_user_model

    from consult.models import CallFeedback, CallQuality, Consultant, Consultation

    Consultation.objects.all().delete()
    Consultant.objects.filter(slug="bench-export").delete()
    user, _ = get_user_model().objects.get_or_create(username="bench-export")
    consultant = Consultant.objects.create(user=user, slug="bench-export", name="B")
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for first in range(0, rows, BATCH):
        calls = []
        for i in range(first, min(rows, first + BATCH)):
            requested = start + timedelta(minutes=5 * i)
            accepted = requested + timedelta(seconds=i % 300)
            calls.append(
                Consultation(
                    consultant=consultant,
                    caller_name=f"Caller {i}",
                    requested_at=requested,
                    accepted_at=accepted,
                    media_connected_at=accepted + timedelta(seconds=1),
                    ended_at=accepted + timedelta(seconds=60 + i % 900),
                    outcome="completed",
                    ended_by="caller",
                )
            )
        made = Consultation.objects.bulk_create(calls)
        if made[0].pk is None:  # backends that do not return ids
            ids = Consultation.objects.order_by("-pk").values_list("pk", flat=True)
            made = [Consultation(pk=pk) for pk in reversed(ids[: len(calls)])]
        CallQuality.objects.bulk_create(
            CallQuality(
                consultation_id=c.pk,
                accept_to_media_ms=1000,
                caller_candidate="host",
                consultant_candidate="host",
                samples=30,
                rtt_histogram={"20": 10, "30": 15, "45": 5},
                rtt_worst_ms=45,
                loss_sum_pct=3.0,
                loss_samples=30,
                in_kbps_sum=30000,
                out_kbps_sum=30000,
                kbps_samples=30,
            )
            for c in made
        )
        CallFeedback.objects.bulk_create(
            CallFeedback(consultation_id=c.pk, rating=4, comment="Fine, thanks.")
            for c in made
        )


def export(limit: int | None) -> dict:
    """Stream the export of the first `limit` rows (all: None) via the admin view."""
    from django.contrib import admin
    from django.contrib.auth import get_user_model
    from django.test import RequestFactory

    from consult.export import export_view
    from consult.models import Consultation

    lead, _ = get_user_model().objects.get_or_create(
        username="bench-export-lead", defaults={"is_staff": True, "is_superuser": True}
    )
    query = {}
    if limit is not None:
        last = (
            Consultation.objects.order_by("requested_at")
            .values_list("requested_at", flat=True)[limit - 1 : limit]
            .get()
        )
        query = {"requested_at__lte": last.isoformat()}
    request = RequestFactory().get("/admin/consult/consultation/export.csv", query)
    request.user = lead
    modeladmin = admin.site._registry[Consultation]
    tracemalloc.start()
    tracemalloc.reset_peak()
    started = time.perf_counter()
    response = export_view(modeladmin, request)
    lines = size = 0
    for chunk in response.streaming_content:
        lines += 1
        size += len(chunk)
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "rows": lines - 1,
        "mb_out": round(size / 1e6, 1),
        "seconds": round(seconds, 1),
        "peak_mb": round(peak / 1e6, 1),
    }


def at_once(limit: int) -> dict:
    """The same rows read into one list, as an export that did not stream would."""
    from consult.export import FIELDS
    from consult.models import Consultation

    tracemalloc.start()
    tracemalloc.reset_peak()
    rows = list(
        Consultation.objects.order_by("requested_at").values_list(*FIELDS.values())[
            :limit
        ]
    )
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"rows": len(rows), "peak_mb": round(peak / 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.export")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--no-seed", dest="seed", action="store_false")
    args = parser.parse_args()
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    if args.seed:
        started = time.perf_counter()
        seed(args.rows)
        print(f"seeded {args.rows} in {time.perf_counter() - started:.0f} s")
    tenth = max(1, args.rows // 10)
    result = {
        "database": connection.vendor,
        "streamed": [export(tenth), export(None)],
        "at_once": [at_once(tenth), at_once(args.rows)],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
