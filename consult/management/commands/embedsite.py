"""Manage the sites that may embed the consulting bot (docs/embed.md).

manage.py embedsite add https://shop.example.com --consultant ada
manage.py embedsite list
manage.py embedsite remove https://shop.example.com
"""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from consult.embed import normalize_origin, snippet
from consult.models import Consultant, EmbedSite


class Command(BaseCommand):
    help = "Add, list or remove the sites allowed to embed the consultation button."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        add = actions.add_parser(
            "add",
            help="Allow a site (or update it): its origin, e.g. https://shop.example.com",
        )
        add.add_argument("origin")
        add.add_argument("--label", help="A name for the site (default: its host).")
        add.add_argument(
            "--consultant",
            action="append",
            default=[],
            metavar="SLUG",
            help="A consultant the site may offer; repeat for more. None: every one.",
        )
        add.add_argument("--inactive", action="store_true", help="Add it switched off.")
        actions.add_parser("list", help="The sites and whom each may offer.")
        remove = actions.add_parser("remove", help="Remove a site from the list.")
        remove.add_argument("origin")

    def handle(self, *args, action, **options):
        getattr(self, f"handle_{action}")(**options)

    def handle_add(self, *, origin, label, consultant, inactive, **options):
        origin = self._origin(origin)
        slugs = list(dict.fromkeys(consultant))
        found = {c.slug: c for c in Consultant.objects.filter(slug__in=slugs)}
        if unknown := [slug for slug in slugs if slug not in found]:
            known = ", ".join(Consultant.objects.values_list("slug", flat=True)[:20])
            raise CommandError(
                f"No consultant with the slug {', '.join(map(repr, unknown))} "
                f"(there are: {known or 'none yet'})."
            )
        with transaction.atomic():
            site, created = EmbedSite.objects.update_or_create(
                origin=origin,
                defaults={
                    "label": (label or origin.split("://", 1)[1])[:120],
                    "is_active": not inactive,
                },
            )
            site.consultants.set(found.values())
        offered = ", ".join(slugs) or "every consultant"
        verb = "Added" if created else "Updated"
        self.stdout.write(
            self.style.SUCCESS(f"{verb} {site.origin}: it may offer {offered}.")
        )
        self.stdout.write("Its snippet (the app's own address in place of APP):")
        self.stdout.write(
            f"  {snippet('https://APP', slugs[0] if len(slugs) == 1 else '')}"
        )

    def handle_list(self, **options):
        sites = EmbedSite.objects.prefetch_related("consultants").order_by("origin")
        if not sites:
            self.stdout.write("No site may embed the consultation button yet.")
        for site in sites:
            slugs = (
                ", ".join(c.slug for c in site.consultants.all()) or "every consultant"
            )
            state = "" if site.is_active else "  (inactive)"
            self.stdout.write(f"{site.origin}  {site.label}  offers: {slugs}{state}")

    def handle_remove(self, *, origin, **options):
        origin = self._origin(origin)
        deleted, _ = EmbedSite.objects.filter(origin=origin).delete()
        if not deleted:
            raise CommandError(f"{origin} is not on the list.")
        self.stdout.write(self.style.SUCCESS(f"Removed {origin}."))

    def _origin(self, value: str) -> str:
        try:
            return normalize_origin(value)
        except ValidationError as error:
            raise CommandError(f"{value!r}: {error.messages[0]}") from None
