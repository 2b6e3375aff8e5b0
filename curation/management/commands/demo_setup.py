"""Prepare the demo: a curator and an expert login, and the generated sample textbook."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from curation.samplebook import chapters_for_pages, generate_book
from curation.services import textbooks as textbook_service

DEMO_USERS = {"curator": ["curator", "expert"], "expert": ["expert"]}


class Command(BaseCommand):
    help = "Create demo logins (password: the username + '-demo') and import the sample book."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--pages", type=int, default=24)

    def handle(self, *args, pages: int, **opts) -> None:
        with transaction.atomic():
            User = get_user_model()
            for username, roles in DEMO_USERS.items():
                user, _ = User.objects.get_or_create(username=username)
                user.set_password(f"{username}-demo")
                user.save()
                user.groups.set([Group.objects.get_or_create(name=role)[0] for role in roles])
        sample = Path(settings.VAR_DIR) / "sample" / f"sample-atlas-{pages}p.pdf"
        if not sample.exists():
            sample.parent.mkdir(parents=True, exist_ok=True)
            generate_book(sample, chapters=chapters_for_pages(pages), seed=0)
        with sample.open("rb") as fh:
            result = textbook_service.import_textbook(fh, filename=sample.name)
        state = "imported" if result.created else "already there"
        self.stdout.write(f"sample book {state}: book {result.textbook.pk}, {sample}")
