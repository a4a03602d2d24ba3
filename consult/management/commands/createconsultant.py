"""Create a user and their consultant profile in one step."""

import getpass
import os

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.text import slugify

from consult.models import Consultant


class Command(BaseCommand):
    help = "Create a consultant: a user with a desk and a queue of their own."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--name", help="Display name shown to callers (default: username)."
        )
        parser.add_argument(
            "--slug", help="URL name of the call page (default: from the name)."
        )
        parser.add_argument("--title", default="", help='e.g. "Tax adviser".')
        parser.add_argument("--max-queue", type=int, default=20)
        parser.add_argument(
            "--password",
            help="Password (default: $CONSULTANT_PASSWORD, else asked for).",
        )

    def handle(
        self, *args, username, name, slug, title, max_queue, password, **options
    ):
        User = get_user_model()
        username = User.normalize_username(username.strip())
        try:
            User.username_validator(username)
        except ValidationError as error:
            raise CommandError(
                "Username refused, nothing created: " + " ".join(error.messages)
            ) from None
        if User.objects.filter(username=username).exists():
            raise CommandError(f"A user named {username!r} exists already.")
        name = name or username
        slug = slug or slugify(name)
        if Consultant.objects.filter(slug=slug).exists():
            raise CommandError(f"The slug {slug!r} is taken; pass --slug.")
        password = password or os.environ.get("CONSULTANT_PASSWORD") or self._ask()
        # AUTH_PASSWORD_VALIDATORS, as createsuperuser applies them.
        try:
            password_validation.validate_password(
                password, User(username=username, first_name=name)
            )
        except ValidationError as error:
            raise CommandError(
                "Password refused, nothing created: " + " ".join(error.messages)
            ) from None
        with transaction.atomic():
            user = User.objects.create_user(username=username, password=password)
            Consultant.objects.create(
                user=user, name=name, slug=slug, title=title, max_queue=max_queue
            )
        self.stdout.write(
            self.style.SUCCESS(f"Consultant {name} created: /call/{slug}/")
        )

    def _ask(self) -> str:
        password = getpass.getpass("Password: ")
        if not password or password != getpass.getpass("Password (again): "):
            raise CommandError("Passwords are empty or do not match.")
        return password
