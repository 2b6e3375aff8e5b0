from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "skinplatform.accounts"
    label = "accounts"
    verbose_name = "Accounts and roles"

    def ready(self) -> None:
        from skinplatform.accounts import checks  # noqa: F401  (registers the deploy checks)
