"""Staff view of money: every ledger transaction with its entries, escrows with their summaries,
payments, refunds, payouts and provider events. All read-only: money moves only via services."""

from django.contrib import admin
from django.utils.html import format_html_join

from payments import selectors
from payments.models import (
    Account,
    Entry,
    Escrow,
    LedgerTransaction,
    Payment,
    Payout,
    ProviderEvent,
    Refund,
    UnappliedTransfer,
)
from tradeassure.core.money import format_money
from tradeassure.platform.admin import ReadOnlyAdminMixin


class EntryInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Entry
    fields = readonly_fields = ("account", "amount", "currency")
    extra = 0
    can_delete = False


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "created_at", "kind", "escrow", "amount", "currency", "idempotency_key"]
    list_filter = ["kind", "currency"]
    search_fields = ["idempotency_key", "escrow__reference", "memo"]
    list_select_related = ["escrow"]
    readonly_fields = [
        "idempotency_key",
        "kind",
        "escrow",
        "amount",
        "currency",
        "provider_event",
        "memo",
        "created_at",
    ]
    inlines = [EntryInline]


@admin.register(Account)
class AccountAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["key", "kind", "currency", "organisation", "balance"]
    list_filter = ["kind", "currency"]
    search_fields = ["key", "organisation__name"]
    list_select_related = ["organisation"]


class PaymentInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Payment
    fields = readonly_fields = (
        "purpose",
        "method",
        "amount",
        "currency",
        "status",
        "created_at",
        "captured_at",
    )
    extra = 0


class RefundInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Refund
    fields = readonly_fields = (
        "kind",
        "amount",
        "currency",
        "status",
        "reason",
        "created_at",
        "completed_at",
    )
    extra = 0


@admin.register(Escrow)
class EscrowAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "reference",
        "currency",
        "buyer_organisation",
        "supplier_organisation",
        "frozen",
    ]
    list_filter = ["currency", "frozen"]
    search_fields = ["reference", "bank_reference", "description"]
    list_select_related = ["buyer_organisation", "supplier_organisation"]
    readonly_fields = [
        "reference",
        "currency",
        "buyer_organisation",
        "supplier_organisation",
        "description",
        "bank_reference",
        "frozen",
        "created_at",
        "money_summary",
    ]
    inlines = [PaymentInline, RefundInline]

    @admin.display(description="Money")
    def money_summary(self, obj: Escrow):
        summary = selectors.escrow_summary(escrow_reference=obj.reference)
        rows = [
            ("Captured", summary.captured),
            ("Held", summary.held),
            ("Released (gross)", summary.released),
            ("Fees", summary.fees),
            ("Refunded", summary.refunded),
            ("Supplier net", summary.supplier_net),
            ("Inspection fee held", summary.inspection_fee_held),
            ("Refunds in transit", summary.refunds_in_transit),
        ]
        return format_html_join(
            "",
            "<div>{}: <strong>{}</strong></div>",
            ((k, format_money(v, obj.currency)) for k, v in rows),
        )


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "escrow",
        "purpose",
        "method",
        "amount",
        "currency",
        "status",
        "created_at",
    ]
    list_filter = ["status", "purpose", "method", "currency"]
    search_fields = ["escrow__reference", "provider_reference", "idempotency_key"]
    list_select_related = ["escrow"]


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "escrow",
        "kind",
        "amount",
        "currency",
        "status",
        "created_at",
        "completed_at",
    ]
    list_filter = ["status", "kind", "currency"]
    search_fields = ["escrow__reference", "provider_reference"]
    list_select_related = ["escrow"]


@admin.register(Payout)
class PayoutAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "organisation",
        "amount",
        "currency",
        "status",
        "created_at",
        "completed_at",
    ]
    list_filter = ["status", "currency"]
    search_fields = ["organisation__name", "provider_reference"]
    list_select_related = ["organisation"]


@admin.register(ProviderEvent)
class ProviderEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "received_at",
        "provider",
        "event_id",
        "type",
        "object_reference",
        "status",
        "note",
    ]
    list_filter = ["provider", "type", "status"]
    search_fields = ["event_id", "object_reference"]


@admin.register(UnappliedTransfer)
class UnappliedTransferAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "payment", "amount", "currency", "reason", "refund", "created_at"]
    list_select_related = ["payment", "refund"]
