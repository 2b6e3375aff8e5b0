"""Give the ``admin`` role the model permissions the Django admin asks for.

The admin site shows a model only to staff holding one of its permissions. The platform's
models get view and change (their admin classes are read-only by design: edits of reviewed
data go through the audited services); accounts and API tokens are viewable; failed sign-ins
(django-axes) can be viewed and deleted, which lifts a lockout. ``change_user`` is left out on
purpose: Django's user form would let its holder make themselves superuser.

Models added to ``curation`` later need a migration like this one to be visible to the role.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLE = "admin"
GRANTS = (  # (app, models or None for all of them, actions)
    ("curation", None, ("view", "change")),
    ("auth", ("user", "group"), ("view",)),
    ("authtoken", ("tokenproxy",), ("view",)),
    ("axes", ("accessattempt",), ("view", "delete")),
    ("axes", ("accesslog", "accessfailurelog"), ("view",)),
)


def _codenames(apps):
    for app_label, models, actions in GRANTS:
        names = models or [m._meta.model_name for m in apps.get_app_config(app_label).get_models()]
        for model in names:
            for action in actions:
                yield app_label, f"{action}_{model}"


def grant(apps, schema_editor):
    # On a fresh database permissions are made after all migrations (post_migrate): make them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=ROLE)
    for app_label, codename in _codenames(apps):
        group.permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group in Group.objects.filter(name=ROLE):
        for app_label, codename in _codenames(apps):
            group.permissions.remove(
                *Permission.objects.filter(content_type__app_label=app_label, codename=codename)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_roles"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("curation", "0008_pair_proposed_partial_idx"),
        ("authtoken", "0004_alter_tokenproxy_options"),
        ("axes", "0010_accessattemptexpiration"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
