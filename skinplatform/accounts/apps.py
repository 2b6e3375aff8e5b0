from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "skinplatform.accounts"
    label = "accounts"
    verbose_name = "Accounts and roles"

    def ready(self) -> None:
        from skinplatform.accounts import checks  # noqa: F401  (registers the deploy checks)
        from skinplatform.accounts.admin_role import grant_admin_permissions

        post_migrate.connect(grant_admin_permissions, dispatch_uid="admin-role")
