"""Staff view of money: every ledger transaction with its entries, escrows with their summaries,
payments, refunds, payouts and provider events. All read-only: money moves only via services."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from payments import selectors, services
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
from tradeassure.core.errors import DomainError
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
    list_display = ["key", "kind", "currency", "organisation", "balance_now"]
    list_filter = ["kind", "currency"]
    search_fields = ["key", "organisation__name"]
    list_select_related = ["organisation"]

    def get_queryset(self, request):
        return super().get_queryset(request).with_unfolded()

    @admin.display(description="balance")
    def balance_now(self, account: Account):
        """The cache plus the entries not folded into it yet (payments.models.UnfoldedEntry)."""
        return account.current_balance


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
        "on_hold",
    ]
    list_filter = ["currency", "frozen", "on_hold"]
    search_fields = ["reference", "bank_reference", "description"]
    list_select_related = ["buyer_organisation", "supplier_organisation"]
    actions = ["lift_hold"]

    @admin.action(description="Lift the hold (staff checked the payment with the provider)")
    def lift_hold(self, request, queryset):
        if not request.user.has_perm("payments.change_payout"):
            raise PermissionDenied
        for escrow in queryset.filter(on_hold=True):
            services.escrow_hold_lift(escrow_reference=escrow.reference, actor=request.user)
            self.message_user(request, f"{escrow.reference}: hold lifted.", messages.SUCCESS)

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


class BankTransferForm(forms.Form):
    bank_reference = forms.CharField(
        max_length=80,
        min_length=4,
        label="Bank reference",
        help_text="The reference your bank gave the transfer (e.g. FT26113000421).",
    )


@admin.register(Payout)
class PayoutAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Payouts; with PAYOUT_PROVIDER=manual staff pay them at their bank and record it here."""

    list_display = [
        "id",
        "organisation",
        "amount",
        "currency",
        "status",
        "provider",
        "created_at",
        "completed_at",
        "record_transfer",
    ]
    list_filter = ["status", "provider", "currency"]
    search_fields = ["organisation__name", "provider_reference"]
    list_select_related = ["organisation"]
    actions = ["settle_review_paid", "settle_review_not_paid"]
    readonly_fields = [
        "organisation",
        "amount",
        "currency",
        "status",
        "provider",
        "provider_reference",
        "requested_by",
        "failure_reason",
        "created_at",
        "completed_at",
        "bank_transfer",
        "record_transfer",
    ]
    exclude = ["idempotency_key"]

    @staticmethod
    def _waiting(payout: Payout) -> bool:
        return payout.provider == "manual" and payout.status in (
            Payout.Status.REQUESTED,
            Payout.Status.PROCESSING,
        )

    @admin.display(description="Bank transfer")
    def record_transfer(self, obj: Payout):
        if not self._waiting(obj):
            return "—"
        url = reverse("admin:payments_payout_record_transfer", args=[obj.pk])
        return format_html('<a class="button" href="{}">Record bank transfer</a>', url)

    @admin.display(description="Bank reference")
    def bank_transfer(self, obj: Payout):
        event = ProviderEvent.objects.filter(
            provider="manual", object_reference=obj.provider_reference, type="payout.paid"
        ).first()
        return event.payload.get("bank_reference", "") if event else "—"

    def _settle_review(self, request, queryset, *, paid: bool) -> None:
        """Payouts the provider reported both paid and failed, checked with the provider."""
        if not request.user.has_perm("payments.change_payout"):
            raise PermissionDenied
        for payout in queryset:
            try:
                services.payout_review_settle(payout_id=payout.pk, paid=paid, actor=request.user)
            except DomainError as error:
                self.message_user(request, f"Payout #{payout.pk}: {error.message}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"Payout #{payout.pk} settled as {'paid' if paid else 'not paid'}.",
                    messages.SUCCESS,
                )

    @admin.action(description="Settle a payout under review: the supplier WAS paid")
    def settle_review_paid(self, request, queryset):
        self._settle_review(request, queryset, paid=True)

    @admin.action(description="Settle a payout under review: the supplier was NOT paid")
    def settle_review_not_paid(self, request, queryset):
        self._settle_review(request, queryset, paid=False)

    def get_urls(self):
        return [
            path(
                "<int:pk>/record-transfer/",
                self.admin_site.admin_view(self.record_transfer_view),
                name="payments_payout_record_transfer",
            ),
            *super().get_urls(),
        ]

    def record_transfer_view(self, request, pk):
        """Staff who may change payouts record the bank's reference; the payout settles."""
        if not request.user.has_perm("payments.change_payout"):
            raise PermissionDenied
        payout = Payout.objects.select_related("organisation").filter(pk=pk).first()
        if payout is None or payout.provider != "manual":
            raise Http404("No manual payout with this id.")
        change_url = reverse("admin:payments_payout_change", args=[payout.pk])
        form = BankTransferForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                services.payout_manual_settle(
                    payout_id=payout.pk,
                    bank_reference=form.cleaned_data["bank_reference"],
                    actor=request.user,
                )
            except DomainError as error:
                form.add_error(None, error.message)
            else:
                self.message_user(
                    request,
                    f"Payout of {format_money(payout.amount, payout.currency)} to "
                    f"{payout.organisation} recorded as paid.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(change_url)
        return TemplateResponse(
            request,
            "admin/payments/payout/record_transfer.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "payout": payout,
                "form": form,
                "title": "Record the bank transfer",
            },
            status=400 if request.method == "POST" else 200,
        )


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
