"""`manage.py anonymise_user <username>`: what the admin's action "Anonymise" does, from a shell."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.services import anonymise_user


class Command(BaseCommand):
    help = "Anonymise an account (deleted-user-<id>): it can no longer sign in; its comments and events stay."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username: str, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user is called {username!r}.")
        try:
            user = anonymise_user(user)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        self.stdout.write(f"{username} is now {user.username}: deactivated; comments and events kept.")
