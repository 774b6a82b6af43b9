from django.apps import AppConfig

from tradeassure.core.app_hooks import NavLink, PeriodicTask


class SuppliersConfig(AppConfig):
    name = "suppliers"
    verbose_name = "Suppliers and Trade Assurance"
    # Listed by tradeassure.platform.catalogue (the schema's enums, event_publish's check).
    error_codes = "suppliers.error_codes.SupplierErrorCode"
    event_topics = "suppliers.topics.SupplierTopic"
    # Navigation bar links (label, url name, roles, position across apps).
    navigation = [
        NavLink("Suppliers", "suppliers:directory", frozenset({"*"}), 10),
        NavLink("Supplier dashboard", "suppliers:dashboard", frozenset({"supplier_staff"}), 30),
        NavLink(
            "Vetting queue",
            "admin:suppliers_tradeassuranceapplication_changelist",
            frozenset({"vetting"}),
            75,
        ),
    ]
    periodic_tasks = [
        # Nightly at 02:15 UTC: metrics, limits and automatic suspension for every supplier.
        PeriodicTask(
            "suppliers: recompute metrics nightly",
            "suppliers.recompute_all_metrics",
            crontab="15 2 * * *",
        ),
        # Daily at 00:05 UTC: lapsed gold memberships and revoked verifications suspend Trade
        # Assurance; gold members are warned 30 and 7 days before expiry.
        PeriodicTask(
            "suppliers: sweep memberships daily",
            "suppliers.sweep_memberships",
            crontab="5 0 * * *",
        ),
    ]
    # Exactly what vetting staff need: decide verifications and applications, suspend/reinstate,
    # set memberships (all through admin actions that call services), curate categories, and read
    # the record. Mediators read a supplier's record when deciding disputes.
    staff_permissions = {
        "vetting": [
            "suppliers.view_supplier",
            "suppliers.change_supplier",
            "suppliers.view_pendingverification",
            "suppliers.change_pendingverification",
            "suppliers.view_tradeassuranceapplication",
            "suppliers.change_tradeassuranceapplication",
            "suppliers.view_verificationdocument",
            "suppliers.view_supplierstatuschange",
            "suppliers.view_suppliermetrics",
            "suppliers.view_supplierorderrecord",
            "suppliers.view_product",
            "suppliers.view_category",
            "suppliers.add_category",
            "suppliers.change_category",
        ],
        "mediator": [
            "suppliers.view_supplier",
            "suppliers.view_supplierstatuschange",
            "suppliers.view_suppliermetrics",
            "suppliers.view_supplierorderrecord",
            "suppliers.view_product",
        ],
    }
