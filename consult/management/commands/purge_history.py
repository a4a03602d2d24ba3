"""Anonymise the history past its retention and clear out ended tickets (daily)."""

from django.conf import settings
from django.core.management.base import BaseCommand

from consult.services.privacy import history_purge


class Command(BaseCommand):
    help = (
        "Erase callers' names and reasons from consultations that ended more than "
        "CONSULT_HISTORY_RETENTION_DAYS ago (keeping the figures), erase personal "
        "data left on ended tickets and delete old ended tickets. Run it daily."
    )

    def handle(self, *args, **options):
        purged = history_purge()
        self.stdout.write(
            f"anonymised {purged.anonymised} consultations older than "
            f"{settings.CONSULT_HISTORY_RETENTION_DAYS} days; erased "
            f"{purged.tickets_erased} and deleted {purged.tickets_deleted} "
            f"ended tickets; deleted {purged.callbacks_deleted} callbacks older "
            f"than {settings.CONSULT_CALLBACK_DAYS} days"
        )
