"""Create (or update) a user with roles, and optionally print an API token for machines."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token

from skinplatform.accounts.roles import ALL_ROLES


class Command(BaseCommand):
    help = "Create or update a user, give it roles, and optionally print its API token."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--role", action="append", default=[], choices=ALL_ROLES, help="repeatable"
        )
        parser.add_argument("--password", help="omit for a machine account (no login)")
        parser.add_argument("--email", default="")
        parser.add_argument("--token", action="store_true", help="create and print a token")

    @transaction.atomic
    def handle(self, *args, username: str, role: list[str], password: str | None, **opts):
        if not role:
            raise CommandError("give at least one --role")
        User = get_user_model()
        user, created = User.objects.get_or_create(
            username=username, defaults={"email": opts["email"]}
        )
        if password:
            user.set_password(password)
        elif created:
            user.set_unusable_password()
        user.is_staff = "admin" in role
        user.save()
        user.groups.set([Group.objects.get_or_create(name=name)[0] for name in role])
        verb = "created" if created else "updated"
        self.stderr.write(f"{verb} user {username} with roles {', '.join(sorted(role))}")
        if opts["token"]:
            token, _ = Token.objects.get_or_create(user=user)
            self.stdout.write(token.key)
