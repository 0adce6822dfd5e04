"""Prepare an installation: migrate, collect static files, ensure an administrator exists."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email

from tocsin.env import env_str


class Command(BaseCommand):
    help = (
        "Migrate the database, collect static files and create the first administrator from "
        "TOCSIN_ADMIN_EMAIL / TOCSIN_ADMIN_PASSWORD (or print a generated password once)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--no-static", action="store_true", help="skip collectstatic")

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("database migrated")
        if not options["no_static"] and not settings.DEBUG:
            call_command("collectstatic", interactive=False, verbosity=0)
            self.stdout.write("static files collected")
        self.ensure_admin()

    def ensure_admin(self):
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return
        email = env_str("TOCSIN_ADMIN_EMAIL", "admin@localhost")
        try:
            validate_email(email)
        except ValidationError:
            raise CommandError(f"TOCSIN_ADMIN_EMAIL={email!r} is not an email address") from None
        password = env_str("TOCSIN_ADMIN_PASSWORD")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(12)
        username = email.split("@", 1)[0] or "admin"
        try:
            # The same validators as every other place a password is set (AUTH_PASSWORD_VALIDATORS).
            validate_password(password, User(username=username, email=email))
        except ValidationError as error:
            raise CommandError(
                "TOCSIN_ADMIN_PASSWORD is too weak: "
                + " ".join(error.messages)
                + " Choose another, or leave it unset to have one generated."
            ) from None
        User.objects.create_superuser(username=username, email=email, password=password)
        self.stdout.write(self.style.SUCCESS(f"administrator created: {username} <{email}>"))
        if generated:
            self.stdout.write(
                self.style.WARNING(
                    f"  generated password (shown once, change it after logging in): {password}"
                )
            )
