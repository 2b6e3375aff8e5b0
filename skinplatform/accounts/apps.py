from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "skinplatform.accounts"
    label = "accounts"
    verbose_name = "Accounts and roles"
