"""Recompute the agreement counters from the reviews, and check them against the from-scratch
computation: after a bulk load that bypassed the review service, or to audit the counters."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from curation.selectors.dashboard import agreement, agreement_from_reviews
from curation.services import agreement_counts


class Command(BaseCommand):
    help = "Rebuild the agreement counters (kappa) from the reviews and check them."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--check", action="store_true",
            help="only compare the counters with the reviews; change nothing (exit 1 if off)",
        )  # fmt: skip

    def handle(self, *args, check: bool, **opts) -> None:
        if check:
            if agreement() != agreement_from_reviews():
                raise CommandError("The agreement counters differ from the reviews: rebuild.")
            self.stdout.write("The agreement counters match the reviews.")
            return
        items = agreement_counts.rebuild()
        if agreement() != agreement_from_reviews():  # pragma: no cover - a bug if it happens
            raise CommandError("Rebuilt counters still differ from the reviews.")
        self.stdout.write(f"Rebuilt the agreement counters: {items} item(s) rated by 2+ experts.")
