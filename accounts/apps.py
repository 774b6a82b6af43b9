from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and organisations"
    # Listed by tradeassure.platform.catalogue (the schema's enum of problem codes).
    error_codes = "accounts.error_codes.AccountErrorCode"
    staff_permissions = {
        "mediator": ["accounts.view_organisation", "accounts.view_user"],
        "vetting": ["accounts.view_organisation", "accounts.view_user"],
    }

    def ready(self) -> None:
        from accounts.roles import sync_staff_groups

        # Groups live in code and are synced after every migrate, so no one sets them by hand.
        post_migrate.connect(sync_staff_groups, dispatch_uid="accounts.sync_staff_groups")
