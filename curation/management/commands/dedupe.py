"""Describe every crop that has no descriptor yet and recluster near-duplicates.

Ingest does this for each finished book; this command catches up after a failure, on books
ingested before near-duplicate detection existed, or after the thresholds change (--all).
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from curation.models import CropImage, Panel
from curation.services import duplicates


class Command(BaseCommand):
    help = "Describe crops without a near-duplicate descriptor, then cluster them against the rest."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--all", action="store_true", help="describe every crop again (thresholds changed)"
        )

    def handle(self, *args, **opts) -> None:
        start = time.monotonic()
        if opts["all"]:
            CropImage.objects.all().delete()
        paths = Panel.objects.values_list("image", flat=True).distinct()
        added = duplicates.index_images(paths)
        counts = duplicates.recluster(reason="dedupe command", everything=opts["all"])
        self.stdout.write(
            f"described {added} new crops; {counts['crops']} crops ({counts['reclustered']} "
            f"clustered again), {counts['clusters']} "
            f"clusters ({counts['clustered_crops']} crops in them), {counts['changed']} "
            f"changed, in {time.monotonic() - start:.1f} s"
        )
