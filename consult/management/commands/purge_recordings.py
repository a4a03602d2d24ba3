"""Delete recordings' files past their retention; each receipt says so."""

from django.conf import settings
from django.core.management.base import BaseCommand

from consult.services.recordings import recordings_assemble_due, recordings_purge


class Command(BaseCommand):
    help = (
        "Delete the files of recordings assembled more than "
        "CONSULT_RECORDING_RETENTION_DAYS ago (their consent receipts stay, "
        "marked deleted by retention), after assembling any stopped recording. "
        "Every server process's repair pass does the same; run this where no "
        "server runs, or from a scheduled job."
    )

    def handle(self, *args, **options):
        assembled = recordings_assemble_due()
        deleted = recordings_purge()
        self.stdout.write(
            f"assembled {assembled} recordings; deleted {deleted} recording files "
            f"older than {settings.CONSULT_RECORDING_RETENTION_DAYS} days"
        )
