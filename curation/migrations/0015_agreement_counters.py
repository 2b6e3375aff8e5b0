"""Agreement counters: count tables kappa is computed from, kept by the review service; and
two indexes on reviews that the dashboard's throughput and timing read.

The counters start from the reviews already stored (the same computation as
``manage.py rebuild_agreement``), so the dashboard's kappas do not change at the upgrade.
"""

from django.db import migrations, models


def build(apps, schema_editor):
    from curation.services.agreement_counts import rebuild

    rebuild(
        apps.get_model("curation", "Review"),
        apps.get_model("curation", "AgreementCount"),
        apps.get_model("curation", "AgreementItem"),
    )


class Migration(migrations.Migration):

    dependencies = [
        ('curation', '0014_pair_confidence'),
    ]

    operations = [
        migrations.CreateModel(
            name='AgreementCount',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('part', models.PositiveSmallIntegerField()),
                ('a', models.BigIntegerField()),
                ('b', models.BigIntegerField()),
                ('label_a', models.CharField(blank=True, default='', max_length=20)),
                ('label_b', models.CharField(blank=True, default='', max_length=20)),
                ('n', models.BigIntegerField(default=0)),
                ('squares', models.BigIntegerField(default=0)),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('part', 'a', 'b', 'label_a', 'label_b'), name='agreement_count_uniq')],
            },
        ),
        migrations.CreateModel(
            name='AgreementItem',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('item_type', models.CharField(default='pair', max_length=20)),
                ('item_id', models.BigIntegerField()),
                ('counts', models.JSONField(default=list, help_text='[[part, a, b, label_a, label_b, n, sq]]')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('item_type', 'item_id'), name='agreement_item_uniq')],
            },
        ),
        migrations.AddIndex(
            model_name="review",
            index=models.Index(fields=["created_at", "expert"], name="review_day_expert_idx"),
        ),
        migrations.AddIndex(
            model_name="review",
            index=models.Index(
                condition=models.Q(("seconds__isnull", False)),
                fields=["expert", "seconds"],
                name="review_timed_idx",
            ),
        ),
        migrations.RunPython(build, migrations.RunPython.noop),
    ]
