"""Models and migrations agree: a model change without its migration fails here, not in deploy."""

import io

from django.core.management import call_command


def test_no_model_change_lacks_a_migration(db):
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)  # exits 1 on a diff
    assert "No changes detected" in out.getvalue()
