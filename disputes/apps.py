from django.apps import AppConfig

from tradeassure.core.app_hooks import NavLink, PeriodicTask


class DisputesConfig(AppConfig):
    name = "disputes"
    verbose_name = "Disputes and mediation"
    # Listed by tradeassure.platform.catalogue (the schema's enums, event_publish's check).
    event_topics = "disputes.topics.DisputeTopic"
    error_codes = "disputes.error_codes.DisputeErrorCode"
    # Navigation bar links (label, url name, roles, position across apps).
    navigation = [
        NavLink("Disputes", "disputes:list", frozenset({"buyer", "supplier_staff"}), 45),
        NavLink("Inspections", "disputes:inspector_home", frozenset({"inspector"}), 60),
        NavLink("Dispute queue", "admin:disputes_dispute_changelist", frozenset({"mediator"}), 75),
    ]
    periodic_tasks = [
        PeriodicTask("disputes: sweep escalations", "disputes.sweep_escalations", 60),
        PeriodicTask("disputes: sweep evidence requests", "disputes.sweep_evidence_requests", 60),
        PeriodicTask("disputes: sweep inspection fees", "disputes.sweep_inspection_fees", 60),
    ]
    # Reminders before the answers, evidence and fees a party owes (tradeassure.platform.reminders).
    reminder_sources = "disputes.reminders.REMINDER_SOURCES"
    # Mediators work in the admin: they see disputes and everything attached, and mediate.
    # Nothing is edited directly: every change goes through an intermediate form and a service.
    staff_permissions = {
        "mediator": [
            "disputes.view_dispute",
            "disputes.mediate_dispute",
            "disputes.view_disputeevent",
            "disputes.view_disputemessage",
            "disputes.view_proposal",
            "disputes.view_evidence",
            "disputes.view_citedmessage",
            "disputes.view_evidencerequest",
            "disputes.view_inspection",
        ],
    }
