from django.apps import AppConfig

from tradeassure.core.app_hooks import NavLink, PeriodicTask


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"
    # Listed by tradeassure.platform.catalogue (the schema's enums, event_publish's check).
    event_topics = "orders.topics.OrderTopic"
    error_codes = "orders.error_codes.OrderErrorCode"
    # Navigation bar links (label, url name, roles, position across apps).
    navigation = [
        NavLink("My orders", "orders:buyer_list", frozenset({"buyer"}), 20),
        NavLink("Orders", "orders:supplier_list", frozenset({"supplier_staff"}), 40),
    ]
    # Deadline sweeps (DESIGN.md §3): each finds what is due by an indexed *_due_at column.
    periodic_tasks = [
        PeriodicTask(
            "orders: sweep confirmation timeouts", "orders.sweep_confirmation_timeouts", 60
        ),
        PeriodicTask("orders: sweep payment timeouts", "orders.sweep_payment_timeouts", 60),
        PeriodicTask("orders: sweep shipment deadlines", "orders.sweep_shipment_deadlines", 60),
        PeriodicTask("orders: sweep receipt windows", "orders.sweep_receipt_windows", 60),
        PeriodicTask(
            "orders: sweep post-delivery windows", "orders.sweep_post_delivery_windows", 60
        ),
        PeriodicTask(
            "orders: sweep pre-shipment inspection fees",
            "orders.sweep_preshipment_inspection_fees",
            60,
        ),
    ]
    # Reminders before the deadlines above (tradeassure.platform.reminders), 3 and 1 days ahead.
    reminder_sources = "orders.reminders.REMINDER_SOURCES"
    # Mediators read orders in the admin (they act through disputes, never by editing rows).
    staff_permissions = {
        "mediator": [
            "orders.view_order",
            "orders.view_orderevent",
            "orders.view_contractversion",
            "orders.view_contractlineitem",
            "orders.view_shipment",
            "orders.view_shipmentdocument",
            "orders.view_orderrating",
            # The order conversation: mediators read it and may hide a message (with a reason).
            "orders.view_ordermessage",
            "orders.view_ordermessageattachment",
            "orders.hide_ordermessage",
            # Pre-shipment inspections: read in the admin and on the dispute case page.
            "orders.view_preshipmentinspection",
            "orders.view_preshipmentinspectionevent",
            "orders.view_preshipmentinspectionfile",
        ],
    }
