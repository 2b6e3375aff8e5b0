"""Give the ``admin`` role the model permissions the Django admin asks for, after every migrate.

The admin site shows a model only to staff holding one of its permissions. The platform's
models get view and change (their admin classes are read-only by design: edits of reviewed
data go through the audited services); accounts and API tokens are viewable; failed sign-ins
(django-axes) can be viewed and deleted, which lifts a lockout. ``change_user`` is left out on
purpose: Django's user form would let its holder make themselves superuser.

This runs on ``post_migrate`` rather than in a data migration so that a model added later is
granted too without anyone remembering to write a migration for it (a migration only sees the
models of its own point in history).
"""

from __future__ import annotations

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions

from skinplatform.accounts.roles import ADMIN

GRANTS = (  # (app, models or None for all of them, actions)
    ("curation", None, ("view", "change")),
    ("auth", ("user", "group"), ("view",)),
    ("authtoken", ("tokenproxy",), ("view",)),
    ("axes", ("accessattempt",), ("view", "delete")),
    ("axes", ("accesslog", "accessfailurelog"), ("view",)),
)


def _codenames(apps) -> list[tuple[str, str]]:
    names = []
    for app_label, models, actions in GRANTS:
        if models is None:
            models = [m._meta.model_name for m in apps.get_app_config(app_label).get_models()]
        names += [(app_label, f"{action}_{model}") for model in models for action in actions]
    return names


def grant_admin_permissions(sender, using: str = "default", **kwargs) -> None:
    """post_migrate receiver, once per migrate (when curation's turn comes); idempotent.

    post_migrate is sent only for apps with a models module, which accounts has not.
    """
    if sender.label != "curation":
        return
    # post_migrate reaches the apps in INSTALLED_APPS order, so later apps' permissions may not
    # exist yet: make them all now (create_permissions only adds what is missing).
    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, verbosity=0, using=using, apps=global_apps)
    Group = global_apps.get_model("auth", "Group")
    Permission = global_apps.get_model("auth", "Permission")
    group, _ = Group.objects.using(using).get_or_create(name=ADMIN)
    for app_label, codename in _codenames(global_apps):
        group.permissions.add(
            Permission.objects.using(using).get(
                content_type__app_label=app_label, codename=codename
            )
        )
