"""Staff read orders here (mediators need the contract, the money and the timeline to decide a
dispute). Nobody edits an order in the admin: every change goes through orders.services."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from orders.models import (
    ContractLineItem,
    ContractVersion,
    Order,
    OrderEvent,
    OrderRating,
    Shipment,
    ShipmentDocument,
)
from tradeassure.core.money import format_money
from tradeassure.platform.admin import ReadOnlyAdminMixin


class OrderEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = OrderEvent
    fields = readonly_fields = (
        "created_at",
        "action",
        "actor_party",
        "actor",
        "from_status",
        "to_status",
        "note",
        "data",
    )
    extra = 0
    ordering = ["id"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")


class ContractVersionInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = ContractVersion
    fields = readonly_fields = (
        "number",
        "state",
        "proposed_by_party",
        "created_at",
        "decided_at",
        "total",
        "initial_payment_amount",
        "shipment_deadline",
        "proposal_note",
    )
    extra = 0
    show_change_link = True


class LateFilter(admin.SimpleListFilter):
    title = "late"
    parameter_name = "late"

    def lookups(self, request, model_admin):
        return [("yes", "Shipment deadline passed")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(is_late=True)
        return queryset


@admin.register(Order)
class OrderAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "reference_display",
        "status",
        "buyer_organisation",
        "supplier",
        "total_display",
        "coverage",
        "is_late",
        "placed_at",
    ]
    list_filter = ["status", "coverage", LateFilter, "currency"]
    search_fields = [
        "=id",
        "purchase_order_number",
        "summary",
        "supplier__legal_name",
        "buyer_organisation__name",
    ]
    list_select_related = ["buyer_organisation", "supplier"]
    date_hierarchy = "placed_at"
    inlines = [ContractVersionInline, OrderEventInline]
    readonly_fields = ["page_link"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "page_link",
                    "status",
                    "status_before_dispute",
                    "buyer_organisation",
                    "buyer",
                    "supplier",
                    "purchase_order_number",
                    "summary",
                ]
            },
        ),
        (
            "Contract in force",
            {
                "fields": [
                    "current_version",
                    "currency",
                    "coverage",
                    "subtotal",
                    "shipping_fee",
                    "total",
                    "initial_payment_amount",
                    "balance_amount",
                    "shipment_deadline",
                    "proposal_pending_from",
                ]
            },
        ),
        (
            "Milestones",
            {
                "fields": [
                    "placed_at",
                    "confirmed_at",
                    "initial_paid_at",
                    "balance_requested_at",
                    "balance_paid_at",
                    "shipped_at",
                    "delivered_at",
                    "completed_at",
                    "cancelled_at",
                    "refunded_at",
                    "cancel_reason",
                    "rating_score",
                ]
            },
        ),
        (
            "Timers",
            {
                "fields": [
                    "confirmation_due_at",
                    "payment_due_at",
                    "shipment_due_at",
                    "receipt_due_at",
                    "completion_due_at",
                    "is_late",
                    "late_flagged_at",
                    "receipt_extended_by_buyer",
                    "receipt_extended_by_supplier",
                    "paused_timers",
                    "disputed_at",
                ]
            },
        ),
    ]

    @admin.display(description="Order", ordering="id")
    def reference_display(self, obj: Order) -> str:
        return obj.reference

    @admin.display(description="Total", ordering="total")
    def total_display(self, obj: Order) -> str:
        return format_money(obj.total, obj.currency)

    @admin.display(description="Order page")
    def page_link(self, obj: Order) -> str:
        return format_html(
            '<a href="{}">{} as the parties see it</a>',
            reverse("orders:detail", args=[obj.pk]),
            obj.reference,
        )


class ContractLineItemInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = ContractLineItem
    fields = readonly_fields = (
        "position",
        "description",
        "specifications",
        "quality_requirements",
        "quantity",
        "unit",
        "unit_price",
        "line_total",
        "product",
    )
    extra = 0


@admin.register(ContractVersion)
class ContractVersionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["__str__", "state", "proposed_by_party", "total", "created_at"]
    list_filter = ["state"]
    list_select_related = ["order"]
    inlines = [ContractLineItemInline]
    search_fields = ["=order__id"]


class ShipmentDocumentInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = ShipmentDocument
    fields = readonly_fields = ("kind", "original_name", "size", "uploaded_at", "download")
    extra = 0

    @admin.display(description="File")
    def download(self, obj: ShipmentDocument) -> str:
        return format_html(
            '<a href="{}">download</a>',
            reverse("orders:shipment_document", args=[obj.shipment.order_id, obj.pk]),
        )


@admin.register(Shipment)
class ShipmentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["order", "carrier", "tracking_number", "shipped_on", "recorded_at", "replaces"]
    list_select_related = ["order"]
    search_fields = ["tracking_number", "=order__id"]
    inlines = [ShipmentDocumentInline]


@admin.register(OrderRating)
class OrderRatingAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["order", "score", "created_at"]
    list_filter = ["score"]
    list_select_related = ["order"]


# The order conversation's admin (read-only, with the staff "hide" view).
from orders.conversation import admin as _conversation_admin  # noqa: E402, F401

# The pre-shipment inspection's admin (read-only).
from orders.inspection import admin as _inspection_admin  # noqa: E402, F401
