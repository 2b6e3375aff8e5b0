"""Partial indexes for the review queue: only the pairs still waiting for review.

The picker walks proposed pairs in id order. Reviewed pairs pile up at the low ids, a
correlation the planner cannot see: with most pairs still proposed it walks the primary key
and filters out every reviewed pair at the head (3,000+ rows after a day's work), and the
(status, id) index does not win the cost race. An index that holds only proposed pairs gives
the oldest one in a single probe. They serve one hand-written statement in
``curation.services.review``; both Postgres and SQLite accept partial indexes.
"""

from django.db import migrations, models

PROPOSED = models.Q(status="proposed")


class Migration(migrations.Migration):
    dependencies = [("curation", "0007_pair_queue_any_idx")]

    operations = [
        migrations.AddIndex(
            model_name="pair",
            index=models.Index(fields=fields, name=name, condition=PROPOSED),
        )
        for name, fields in (
            ("pair_proposed_idx", ["id"]),
            ("pair_proposed_book_idx", ["textbook", "id"]),
            ("pair_proposed_mod_idx", ["modality", "id"]),
        )
    ]
