"""Create the first superuser on a fresh install; does nothing once any user exists."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create a superuser (ADMIN_USERNAME / ADMIN_PASSWORD) when there are no users yet."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--url", default="", help="where the site is served, to say so")

    def handle(self, *args: object, **options: object) -> None:
        User = get_user_model()
        if User.objects.exists():
            if options.get("url"):
                self.stdout.write(f"chatsite is at {options['url']}")
            return
        username = settings.ADMIN_USERNAME or "admin"
        password = settings.ADMIN_PASSWORD or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        if settings.ADMIN_PASSWORD:
            self.stdout.write(f"Created superuser {username!r} (password from ADMIN_PASSWORD).")
        else:
            self.stdout.write(
                f"Created superuser {username!r} with password: {password}\n"
                "It is shown only this once; change it after logging in."
            )
        if options.get("url"):
            self.stdout.write(f"Sign in at {options['url']}")
