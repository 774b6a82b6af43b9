from django.apps import AppConfig
from django.db.models.signals import post_migrate

from tradeassure.core.app_hooks import NavLink, PeriodicTask


class PlatformConfig(AppConfig):
    """Events, notifications, outbox, webhooks and the API's shared parts, for every app."""

    name = "tradeassure.platform"
    # The label it had when it was the project package itself: tables, migration history,
    # content types and permissions stay "tradeassure_*" / "tradeassure.*".
    label = "tradeassure"
    verbose_name = "Platform"
    # Codes of the API's machinery and the topics the platform sends itself (catalogue.py).
    error_codes = "tradeassure.platform.error_codes.PlatformErrorCode"
    event_topics = "tradeassure.platform.topics.PlatformTopic"
    # Navigation bar links (label, url name, roles, position across apps).
    navigation = [
        NavLink(
            "Developers",
            "developers",
            frozenset({"buyer", "supplier_staff", "partner"}),
            70,
            "manage_integrations",
        ),
        NavLink("Team", "team", frozenset({"buyer", "supplier_staff"}), 72, "manage_members"),
        NavLink("Admin", "admin:index", frozenset({"mediator", "vetting"}), 80),
    ]
    periodic_tasks = [
        PeriodicTask("outbox: dispatch due messages", "tradeassure.dispatch_outbox", 30),
        PeriodicTask("health: worker heartbeat", "tradeassure.record_heartbeat", 60),
        PeriodicTask("webhooks: deliver due", "tradeassure.deliver_webhooks", 30),
        # Reminders before the deadlines the apps declare (`reminder_sources`, reminders.py).
        PeriodicTask("reminders: send due reminders", "tradeassure.send_reminders", 60),
        PeriodicTask(
            "api: purge expired idempotency keys", "tradeassure.purge_idempotency_records", 3600
        ),
    ]

    def ready(self) -> None:
        from tradeassure.platform.schedules import sync_periodic_tasks

        # Schedules live in code and are written to django-celery-beat's tables after every
        # migrate, so nobody creates them by hand and a deploy keeps them current.
        post_migrate.connect(sync_periodic_tasks, dispatch_uid="tradeassure.sync_periodic_tasks")
