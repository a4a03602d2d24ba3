"""A few demo consultants for the quick start. Never run this in production."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from consult.embed import origin_or_none
from consult.models import Consultant, EmbedSite

DEMO = [
    ("ada", "Ada Lovelace", "Mathematics tutor"),
    ("grace", "Grace Hopper", "Software consultant"),
    ("alan", "Alan Turing", "Cryptography adviser"),
]
PASSWORD = "demo-password"  # noqa: S105 - printed for the quick start only


class Command(BaseCommand):
    help = "Create demo consultants with known passwords (development only)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true", help="Run even with DEBUG off."
        )
        parser.add_argument(
            "--embed-origin",
            default="http://localhost:8000",
            help="The demo host page's origin, allowed to embed the button "
            "(/embed/demo/, docs/embed.md).",
        )

    def handle(self, *args, force, embed_origin, **options):
        if not settings.DEBUG and not force:
            raise CommandError(
                "seed_demo creates known passwords: DEBUG only (or --force)."
            )
        User = get_user_model()
        for username, name, title in DEMO:
            user, created = User.objects.get_or_create(username=username)
            if created:
                user.set_password(PASSWORD)
                user.save()
            Consultant.objects.get_or_create(
                user=user, defaults={"slug": username, "name": name, "title": title}
            )
        admin, created = User.objects.get_or_create(
            username="admin", defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            admin.set_password(PASSWORD)
            admin.save()
        # The sample shop page of /embed/demo/ may embed the consultation button.
        embed_origin = origin_or_none(embed_origin)
        if embed_origin is None:
            raise CommandError(
                "--embed-origin: give an origin like http://localhost:8000"
            )
        EmbedSite.objects.get_or_create(
            origin=embed_origin, defaults={"label": "Demo shop (/embed/demo/)"}
        )
        self.stdout.write(f"Demo logins (password for all: {PASSWORD}):")
        for username, name, _ in DEMO:
            self.stdout.write(f"  desk  {username:6} {name}")
        self.stdout.write("  admin  admin  (http://127.0.0.1:8000/admin/)")
        self.stdout.write(f"Embed demo: {embed_origin}/embed/demo/")
