"""Import textbook PDFs from the command line; each is stored and queued for ingest."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from curation.services import textbooks as textbook_service
from curation.services.errors import ServiceError


class Command(BaseCommand):
    help = "Import one or more textbook PDFs and start their ingest."

    def add_arguments(self, parser) -> None:
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--title", default="", help="only with a single path")
        parser.add_argument("--edition", default="")
        parser.add_argument("--authors", default="")
        parser.add_argument("--licence-note", default="")

    def handle(self, *args, paths: list[Path], **opts) -> None:
        if opts["title"] and len(paths) > 1:
            raise CommandError("--title applies to a single file")
        failures = 0
        for path in paths:
            if not path.is_file():
                self.stderr.write(f"{path}: no such file")
                failures += 1
                continue
            try:
                with path.open("rb") as fh:
                    result = textbook_service.import_textbook(
                        fh,
                        filename=path.name,
                        metadata=textbook_service.BookMetadata(
                            title=opts["title"],
                            edition=opts["edition"],
                            authors=opts["authors"],
                            licence_note=opts["licence_note"],
                        ),
                    )
            except ServiceError as exc:
                self.stderr.write(f"{path}: refused ({exc.code}): {exc.message}")
                failures += 1
                continue
            book = result.textbook
            verb = "imported" if result.created else "already imported"
            line = f"{path}: {verb} as book {book.pk} ({book.page_count} pages)"
            if result.waiting_for_broker:
                line += f"; {textbook_service.BROKER_DOWN_MESSAGE}"
            self.stdout.write(line)
        if failures:
            raise CommandError(f"{failures} of {len(paths)} file(s) were not imported")
