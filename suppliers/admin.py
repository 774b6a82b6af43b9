"""The vetting staff's admin: queues, decisions with a reason, and the full status history.

Status fields are read-only here; every decision is an admin action with an intermediate form
(the reason) that calls a service, so the admin writes exactly what the services allow.
"""

from collections.abc import Callable

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Case, Count, IntegerField, Value, When
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from suppliers import selectors, services
from suppliers.forms import MembershipForm, ReasonForm, VerificationDecisionForm
from suppliers.models import (
    Category,
    PendingVerification,
    Product,
    Supplier,
    SupplierMetrics,
    SupplierOrderRecord,
    SupplierStatusChange,
    TradeAssuranceApplication,
    VerificationDocument,
)
from tradeassure.core.errors import DomainError
from tradeassure.platform.admin import ReadOnlyAdmin, ReadOnlyInline

NO_SAVE = {"show_save": False, "show_save_and_continue": False, "show_save_and_add_another": False}


def decision_action(
    modeladmin: admin.ModelAdmin,
    request,
    queryset,
    *,
    form_class: type,
    title: str,
    apply: Callable,
    done_message: str,
):
    """Ask for a reason on an intermediate page, then apply a service to each selected row."""
    form = form_class(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        done, refused = 0, []
        for obj in queryset:
            try:
                apply(obj, form.cleaned_data)
            except DomainError as error:
                refused.append(error.message)
            else:
                done += 1
        if done:
            modeladmin.message_user(request, f"{done} {done_message}.", messages.SUCCESS)
        for message in refused:
            modeladmin.message_user(request, message, messages.ERROR)
        return None
    return TemplateResponse(
        request,
        "admin/suppliers/decision_form.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": title,
            "form": form,
            "objects": list(queryset),
            "action": request.POST.get("action", ""),
            "select_across": request.POST.get("select_across", "0"),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "opts": modeladmin.model._meta,
            "media": modeladmin.media + form.media,
        },
    )


class VerificationDocumentInline(ReadOnlyInline):
    model = VerificationDocument
    fields = readonly_fields = ("kind", "document", "size", "uploaded_by", "uploaded_at")

    @admin.display(description="File")
    def document(self, obj):
        return format_html(
            '<a href="{}">{}</a>',
            reverse("suppliers:document_download", args=[obj.pk]),
            obj.original_name,
        )


class ApplicationInline(ReadOnlyInline):
    model = TradeAssuranceApplication
    fields = readonly_fields = (
        "status",
        "submitted_at",
        "submitted_by",
        "decided_at",
        "decided_by",
        "decision_reason",
    )


class StatusChangeInline(ReadOnlyInline):
    model = SupplierStatusChange
    fields = readonly_fields = (
        "created_at",
        "field",
        "from_display",
        "to_display",
        "actor",
        "reason",
    )
    verbose_name_plural = "status history (who, when, why)"


@admin.register(Supplier)
class SupplierAdmin(admin.ModelAdmin):
    list_display = [
        "legal_name",
        "country",
        "membership",
        "membership_expires_on",
        "verification_status",
        "ta_status",
        "ta_limit_usd",
    ]
    list_filter = ["ta_status", "verification_status", "membership", "country"]
    search_fields = ["legal_name", "organisation__name"]
    list_select_related = ["organisation"]
    fields = readonly_fields = (
        "organisation",
        "legal_name",
        "country",
        "year_established",
        "description",
        "category_names",
        "declared_capacity",
        "verified_capacity",
        "membership",
        "membership_expires_on",
        "verification_status",
        "verification_reason",
        "verification_decided_at",
        "ta_status",
        "ta_status_reason",
        "ta_status_changed_at",
        "ta_limit_usd",
        "suspension_grace_until",
        "eligibility_now",
        "created_at",
    )
    inlines = [VerificationDocumentInline, ApplicationInline, StatusChangeInline]
    actions = [
        "approve_verification",
        "reject_verification",
        "suspend_trade_assurance",
        "reinstate_trade_assurance",
        "set_membership",
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("categories")

    def has_add_permission(self, request) -> bool:
        return False  # suppliers create their own profile from the dashboard

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return super().change_view(
            request, object_id, form_url, {**NO_SAVE, **(extra_context or {})}
        )

    @admin.display(description="Categories")
    def category_names(self, obj) -> str:
        return ", ".join(c.name for c in obj.categories.all()) or "—"

    @admin.display(description="Trade Assurance rules now")
    def eligibility_now(self, obj):
        return format_html_join(
            "",
            "<div>{} {} <small>{}</small></div>",
            (
                ("✔" if c.passed else "✘", c.label, c.detail)
                for c in selectors.supplier_eligibility_checks(supplier=obj)
            ),
        )

    @admin.action(description="Approve business verification…", permissions=["change"])
    def approve_verification(self, request, queryset):
        return decision_action(
            self,
            request,
            queryset,
            form_class=VerificationDecisionForm,
            title="Approve business verification",
            done_message="verification(s) approved",
            apply=lambda supplier, data: services.supplier_verification_decide(
                actor=request.user,
                supplier=supplier,
                approve=True,
                reason=data["reason"],
                verified_capacity=data.get("verified_capacity"),
            ),
        )

    @admin.action(description="Reject business verification…", permissions=["change"])
    def reject_verification(self, request, queryset):
        return decision_action(
            self,
            request,
            queryset,
            form_class=ReasonForm,
            title="Reject business verification",
            done_message="verification(s) rejected",
            apply=lambda supplier, data: services.supplier_verification_decide(
                actor=request.user, supplier=supplier, approve=False, reason=data["reason"]
            ),
        )

    @admin.action(description="Suspend Trade Assurance…", permissions=["change"])
    def suspend_trade_assurance(self, request, queryset):
        return decision_action(
            self,
            request,
            queryset,
            form_class=ReasonForm,
            title="Suspend Trade Assurance",
            done_message="supplier(s) suspended",
            apply=lambda supplier, data: services.supplier_suspend(
                actor=request.user, supplier=supplier, reason=data["reason"]
            ),
        )

    @admin.action(description="Reinstate Trade Assurance…", permissions=["change"])
    def reinstate_trade_assurance(self, request, queryset):
        return decision_action(
            self,
            request,
            queryset,
            form_class=ReasonForm,
            title="Reinstate Trade Assurance",
            done_message="supplier(s) reinstated",
            apply=lambda supplier, data: services.supplier_reinstate(
                actor=request.user, supplier=supplier, reason=data["reason"]
            ),
        )

    @admin.action(description="Record membership (free / gold)…", permissions=["change"])
    def set_membership(self, request, queryset):
        return decision_action(
            self,
            request,
            queryset,
            form_class=MembershipForm,
            title="Record membership",
            done_message="membership(s) recorded",
            apply=lambda supplier, data: services.supplier_membership_set(
                actor=request.user,
                supplier=supplier,
                membership=data["membership"],
                expires_on=data.get("expires_on"),
                reason=data["reason"],
            ),
        )


@admin.register(PendingVerification)
class PendingVerificationAdmin(SupplierAdmin):
    """The verification queue: oldest first, with the number of documents to read."""

    list_display = ["legal_name", "country", "documents_count", "membership", "created_at"]
    list_filter = ["country"]
    actions = ["approve_verification", "reject_verification"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .filter(verification_status="pending")
            .annotate(document_total=Count("documents"))
            .order_by("created_at", "pk")
        )

    @admin.display(description="Documents", ordering="document_total")
    def documents_count(self, obj) -> int:
        return obj.document_total


class ApplicationQueueFilter(admin.SimpleListFilter):
    """The queue opens on what waits for a decision; decided applications are one click away."""

    title = "status"
    parameter_name = "queue"

    def lookups(self, request, model_admin):
        return [(value, label) for value, label in TradeAssuranceApplication.Status.choices] + [
            ("all", "All")
        ]

    def choices(self, changelist):
        value = self.value() or TradeAssuranceApplication.Status.PENDING
        for lookup, title in self.lookup_choices:
            yield {
                "selected": value == str(lookup),
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value() or TradeAssuranceApplication.Status.PENDING
        if value == "all":
            return queryset
        return queryset.filter(status=value)


@admin.register(TradeAssuranceApplication)
class TradeAssuranceApplicationAdmin(admin.ModelAdmin):
    """The application queue: pending by default (oldest first); the application page shows the
    supplier's documents and the approve/reject decisions."""

    change_form_template = "admin/suppliers/tradeassuranceapplication/change_form.html"
    list_display = ["supplier", "status", "submitted_at", "submitted_by", "rules", "decided_by"]
    list_filter = [ApplicationQueueFilter]
    search_fields = ["supplier__legal_name"]
    list_select_related = ["supplier", "submitted_by", "decided_by"]
    fields = readonly_fields = (
        "supplier",
        "status",
        "rules_at_submission",
        "eligibility_now",
        "submitted_by",
        "submitted_at",
        "decided_by",
        "decided_at",
        "decision_reason",
        "documents",
    )
    actions = ["approve_applications", "reject_applications"]

    @admin.display(description="Verification documents")
    def documents(self, obj):
        files = list(obj.supplier.documents.order_by("uploaded_at", "pk"))
        if not files:
            return "No documents uploaded."
        return format_html_join(
            "",
            '<div><a href="{}">{}</a> <small>{}, uploaded {}</small></div>',
            (
                (
                    reverse("suppliers:document_download", args=[doc.pk]),
                    doc.original_name,
                    doc.get_kind_display(),
                    f"{doc.uploaded_at:%Y-%m-%d}",
                )
                for doc in files
            ),
        )

    def get_queryset(self, request):
        pending_first = Case(
            When(status="pending", then=Value(0)), default=Value(1), output_field=IntegerField()
        )
        return (
            super()
            .get_queryset(request)
            .annotate(queue_order=pending_first)
            .order_by("queue_order", "submitted_at", "pk")
        )

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # The decisions, on the page itself: each posts the changelist action for this one row
        # (the reason is asked on the next page, as from the queue).
        decide = {
            "decision_actions": [
                ("approve_applications", "Approve Trade Assurance…"),
                ("reject_applications", "Reject Trade Assurance…"),
            ],
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return super().change_view(
            request, object_id, form_url, {**NO_SAVE, **decide, **(extra_context or {})}
        )

    @admin.display(description="Rules at submission")
    def rules(self, obj) -> str:
        passed = sum(1 for check in obj.rule_checks if check.get("passed"))
        return f"{passed}/{len(obj.rule_checks)} pass"

    @admin.display(description="Rules when the supplier applied")
    def rules_at_submission(self, obj):
        return format_html_join(
            "",
            "<div>{} {} <small>{}</small></div>",
            (
                ("✔" if c.get("passed") else "✘", c.get("label", ""), c.get("detail", ""))
                for c in obj.rule_checks
            ),
        )

    @admin.display(description="Rules now")
    def eligibility_now(self, obj):
        return SupplierAdmin.eligibility_now(self, obj.supplier)

    @admin.action(description="Approve Trade Assurance…", permissions=["change"])
    def approve_applications(self, request, queryset):
        return decision_action(
            self,
            request,
            queryset.select_related("supplier"),
            form_class=ReasonForm,
            title="Approve Trade Assurance applications",
            done_message="application(s) approved",
            apply=lambda application, data: services.supplier_application_decide(
                actor=request.user, application=application, approve=True, reason=data["reason"]
            ),
        )

    @admin.action(description="Reject Trade Assurance…", permissions=["change"])
    def reject_applications(self, request, queryset):
        return decision_action(
            self,
            request,
            queryset.select_related("supplier"),
            form_class=ReasonForm,
            title="Reject Trade Assurance applications",
            done_message="application(s) rejected",
            apply=lambda application, data: services.supplier_application_decide(
                actor=request.user, application=application, approve=False, reason=data["reason"]
            ),
        )


@admin.register(SupplierStatusChange)
class SupplierStatusChangeAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "supplier",
        "field",
        "from_display",
        "to_display",
        "actor",
        "reason",
    ]
    list_filter = ["field"]
    search_fields = ["supplier__legal_name", "reason"]
    list_select_related = ["supplier", "actor"]


@admin.register(SupplierOrderRecord)
class SupplierOrderRecordAdmin(ReadOnlyAdmin):
    list_display = [
        "order_reference",
        "supplier",
        "status",
        "amount",
        "currency",
        "amount_usd",
        "placed_at",
        "disputed",
        "dispute_lost",
        "rating",
    ]
    list_filter = ["status", "disputed", "dispute_lost"]
    search_fields = ["order_reference", "supplier__legal_name"]
    list_select_related = ["supplier"]


@admin.register(SupplierMetrics)
class SupplierMetricsAdmin(ReadOnlyAdmin):
    list_display = [
        "supplier",
        "orders_count",
        "completion_rate",
        "on_time_rate",
        "dispute_rate",
        "disputes_lost",
        "average_rating",
        "median_hours_to_confirm",
        "open_exposure_usd",
        "computed_at",
    ]
    list_select_related = ["supplier"]


@admin.register(Product)
class ProductAdmin(ReadOnlyAdmin):
    list_display = ["name", "supplier", "category", "unit_price", "currency", "is_active"]
    list_filter = ["is_active", "category", "currency"]
    search_fields = ["name", "supplier__legal_name"]
    list_select_related = ["supplier", "category"]


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name"]
