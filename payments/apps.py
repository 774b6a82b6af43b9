from django.apps import AppConfig

from tradeassure.core.app_hooks import NavLink, PeriodicTask


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Money (escrow ledger)"
    # Listed by tradeassure.platform.catalogue (the schema's enums, event_publish's check).
    error_codes = "payments.error_codes.PaymentErrorCode"
    event_topics = "payments.topics.PaymentTopic"
    # Navigation bar links (label, url name, roles, position across apps).
    navigation = [
        NavLink("Money", "payments:money", frozenset({"supplier_staff"}), 50, "see_money"),
    ]
    periodic_tasks = [
        # Nightly at 02:30 UTC; a failure raises a SystemAlert staff see in the admin.
        PeriodicTask(
            "payments: nightly ledger check", "payments.ledger_check", crontab="30 2 * * *"
        ),
        PeriodicTask(
            "payments: resend stuck refunds and payouts", "payments.resend_stuck_requests", 60
        ),
    ]
    # Mediators decide who gets the money, so they may see (never change) all of it.
    staff_permissions = {
        "mediator": [
            "payments.view_escrow",
            "payments.view_account",
            "payments.view_ledgertransaction",
            "payments.view_entry",
            "payments.view_payment",
            "payments.view_refund",
            "payments.view_payout",
            "payments.view_providerevent",
            "payments.view_unappliedtransfer",
        ],
    }

    def ready(self) -> None:
        from payments import checks  # noqa: F401  (registers the production payments check)
