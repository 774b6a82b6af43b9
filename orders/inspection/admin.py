"""Staff read pre-shipment inspections: list, filter, the report with its files and the
timeline. Read-only: every change goes through the services (the pages and the API)."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from orders.inspection.models import (
    PreshipmentInspection,
    PreshipmentInspectionEvent,
    PreshipmentInspectionFile,
)
from tradeassure.platform.admin import ReadOnlyAdminMixin


class PreshipmentInspectionEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = PreshipmentInspectionEvent
    fields = readonly_fields = (
        "created_at",
        "action",
        "from_status",
        "to_status",
        "actor_party",
        "actor",
        "note",
    )
    extra = 0


@admin.register(PreshipmentInspection)
class PreshipmentInspectionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "order",
        "organisation",
        "status",
        "verdict",
        "fee_amount",
        "currency",
        "booked_at",
        "reported_at",
    )
    list_filter = ("status", "verdict", "resolution", "organisation")
    search_fields = ("order__id", "organisation__name", "findings")
    list_select_related = ("order", "organisation")
    readonly_fields = (
        "order",
        "contract_version",
        "organisation",
        "status",
        "instructions",
        "fee_amount",
        "currency",
        "booked_by",
        "booked_at",
        "fee_payment",
        "fee_paid_at",
        "fee_settled_at",
        "fee_refunded",
        "proposed_dates",
        "dates_note",
        "verdict",
        "findings",
        "report_files",
        "reported_by",
        "reported_at",
        "resolution",
        "resolution_note",
        "resolved_at",
    )
    fields = readonly_fields
    inlines = (PreshipmentInspectionEventInline,)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("order", "organisation", "contract_version", "booked_by")
            .prefetch_related("files")
        )

    @admin.display(description="Report files")
    def report_files(self, obj: PreshipmentInspection) -> str:
        files: list[PreshipmentInspectionFile] = list(obj.files.all())
        if not files:
            return "—"
        return format_html_join(
            mark_safe("<br>"),
            '<a href="{}">{}</a>',
            (
                (reverse("orders:inspection_file", args=[obj.pk, file.pk]), file.original_name)
                for file in files
            ),
        )
