"""Sex is "female" | "male" | NULL everywhere; reviews say whether they were independent.

The extractor used to write "F"/"M" while the review form offers female/male: every unchanged
accept turned the pair into an edit with an empty sex. This respells what is stored in the
contract's values: the pair's working value, the machine's copy (``proposed``), reviewers'
values and the audit rows' before/after. The audit keeps the same facts, only spelled as the
vocabulary now spells them, so a revert to an old state and a replay of the history give
values the form and the release understand. Unknown becomes NULL, never "".

``Review.independent``: only decisions made on an undecided pair count toward agreement;
adjudications never did, so they are marked dependent here.
"""

from django.db import migrations, models

SPELLING = {"f": "female", "female": "female", "m": "male", "male": "male"}
BATCH = 2000


def _sex(value):
    if not isinstance(value, str):
        return None
    return SPELLING.get(value.strip().lower())


def _respell(data):
    """``data`` with every "sex" key (at any depth) in the contract's values; None if unchanged."""
    if not isinstance(data, dict):
        return None
    changed = False
    out = {}
    for key, value in data.items():
        if key == "sex":
            new = _sex(value)
            changed |= new != value
        elif isinstance(value, dict):
            inner = _respell(value)
            new = value if inner is None else inner
            changed |= inner is not None
        else:
            new = value
        out[key] = new
    return out if changed else None


def _flush(model, rows, fields):
    if rows:
        model.objects.bulk_update(rows, fields)
        rows.clear()


def forwards(apps, schema_editor):
    Pair = apps.get_model("curation", "Pair")
    Review = apps.get_model("curation", "Review")
    ReviewEvent = apps.get_model("curation", "ReviewEvent")

    rows = []
    for pair in Pair.objects.only("id", "sex", "proposed").iterator(chunk_size=BATCH):
        sex = _sex(pair.sex)
        proposed = _respell(pair.proposed)
        if sex != pair.sex or proposed is not None:
            pair.sex = sex
            if proposed is not None:
                pair.proposed = proposed
            rows.append(pair)
        if len(rows) >= BATCH:
            _flush(Pair, rows, ["sex", "proposed"])
    _flush(Pair, rows, ["sex", "proposed"])

    for review in Review.objects.only("id", "values").iterator(chunk_size=BATCH):
        values = _respell(review.values)
        if values is not None:
            review.values = values
            rows.append(review)
        if len(rows) >= BATCH:
            _flush(Review, rows, ["values"])
    _flush(Review, rows, ["values"])
    Review.objects.filter(adjudication=True).update(independent=False)

    events = ReviewEvent.objects.filter(target_type="pair").only("id", "before", "after")
    for event in events.iterator(chunk_size=BATCH):
        before, after = _respell(event.before), _respell(event.after)
        if before is not None or after is not None:
            event.before = event.before if before is None else before
            event.after = event.after if after is None else after
            rows.append(event)
        if len(rows) >= BATCH:
            _flush(ReviewEvent, rows, ["before", "after"])
    _flush(ReviewEvent, rows, ["before", "after"])


def backwards(apps, schema_editor):
    """Only what the older column needs: no NULL. The respelt values are valid there too."""
    apps.get_model("curation", "Pair").objects.filter(sex__isnull=True).update(sex="")


class Migration(migrations.Migration):
    dependencies = [("curation", "0012_ingest_heartbeat")]

    operations = [
        migrations.AddField(
            model_name="review",
            name="independent",
            field=models.BooleanField(
                default=True,
                help_text="made on an undecided pair, without another decision in view: only "
                "these count toward agreement",
            ),
        ),
        migrations.AlterField(
            model_name="pair",
            name="sex",
            field=models.CharField(
                blank=True,
                choices=[("female", "Female"), ("male", "Male")],
                max_length=10,
                null=True,
            ),
        ),
        migrations.RunPython(forwards, backwards),
        migrations.AddConstraint(
            model_name="pair",
            constraint=models.CheckConstraint(
                condition=models.Q(("sex__in", ["female", "male"]), ("sex__isnull", True),
                                   _connector="OR"),
                name="pair_sex_female_male_or_null",
            ),
        ),
    ]
