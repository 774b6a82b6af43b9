"""Mediation in the Django admin.

The changelist is the mediators' queue (escalated disputes, most urgent pick-up first, overdue
flagged) with an "Assign to me" action. A dispute's page is the whole case on one page, with
intermediate forms to request evidence, order an inspection and decide; every one calls a
service. Nothing is edited directly, so nothing bypasses the rules.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import F
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from disputes import selectors, services
from disputes.forms import DecisionForm, EvidenceRequestForm, InspectionOrderForm
from disputes.models import MEDIATION_STATUSES, OPEN_STATUSES, Dispute, Remedy
from disputes.terms import describe_terms, outcome_preview, outcome_terms_check
from orders.conversation.selectors import order_messages
from orders.inspection.selectors import inspection_reports_for_order
from tradeassure.core import clock
from tradeassure.core.errors import DomainError

MEDIATE = "disputes.mediate_dispute"


class QueueFilter(admin.SimpleListFilter):
    title = "queue"
    parameter_name = "queue"

    def lookups(self, request, model_admin):
        return [
            ("mine", "Assigned to me"),
            ("waiting", "Waiting for pick-up"),
            ("open", "All open disputes"),
            ("all", "All disputes"),
        ]

    def choices(self, changelist):
        # "In mediation" is the default (no parameter), so the queue is what a mediator sees first.
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "In mediation",
        }
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == str(lookup),
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value()
        if value == "mine":
            return queryset.filter(mediator=request.user, status__in=MEDIATION_STATUSES)
        if value == "waiting":
            return queryset.filter(status="escalated")
        if value == "open":
            return queryset.filter(status__in=OPEN_STATUSES)
        if value == "all":
            return queryset
        return queryset.filter(status__in=MEDIATION_STATUSES)


@admin.register(Dispute)
class DisputeAdmin(admin.ModelAdmin):
    list_display = (
        "reference_link",
        "order_reference",
        "type",
        "status",
        "pickup_sla",
        "mediator",
        "flag",
        "escalated_at",
    )
    list_filter = (QueueFilter, "status", "type", "flagged_for_decision")
    search_fields = (
        "id",
        "order__id",
        "order__supplier__legal_name",
        "order__buyer_organisation__name",
    )
    actions = ["assign_to_me"]
    list_per_page = 50

    # --- permissions: mediators view and mediate; nobody adds, edits or deletes rows ---------
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return Dispute.objects.select_related(
            "order__supplier", "order__buyer_organisation", "mediator"
        )

    def get_ordering(self, request):
        # The SLA first: the pick-up due soonest (overdue on top), flagged cases, oldest.
        return [
            F("pickup_due_at").asc(nulls_last=True),
            "-flagged_for_decision",
            "escalated_at",
            "id",
        ]

    # --- list columns ---------------------------------------------------------------------------
    @admin.display(description="Dispute", ordering="id")
    def reference_link(self, obj):
        url = reverse("admin:disputes_dispute_change", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, obj.reference)

    @admin.display(description="Order", ordering="order_id")
    def order_reference(self, obj):
        return obj.order.reference

    @admin.display(description="Pick up by", ordering="pickup_due_at")
    def pickup_sla(self, obj):
        if obj.pickup_due_at is None:
            return "—"
        if selectors.pickup_overdue(obj):
            return format_html(
                '<strong class="ta-alert">OVERDUE since {}</strong>',
                obj.pickup_due_at.strftime("%Y-%m-%d %H:%M"),
            )
        return obj.pickup_due_at.strftime("%Y-%m-%d %H:%M")

    @admin.display(description="Flag", boolean=False)
    def flag(self, obj):
        return obj.flag_reason if obj.flagged_for_decision else ""

    # --- actions --------------------------------------------------------------------------------
    @admin.action(description="Assign to me", permissions=["mediate"])
    def assign_to_me(self, request, queryset):
        for dispute in queryset.order_by("pk"):
            try:
                services.dispute_assign(dispute=dispute, actor=request.user)
            except DomainError as error:
                self.message_user(request, f"{dispute.reference}: {error.message}", messages.ERROR)
            else:
                self.message_user(request, f"{dispute.reference} is now yours.", messages.SUCCESS)

    def has_mediate_permission(self, request):
        return request.user.has_perm(MEDIATE)

    # --- the case page and its intermediate forms -------------------------------------------
    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/assign/", wrap(self.assign_view), name="disputes_dispute_assign"),
            path(
                "<int:pk>/request-evidence/",
                wrap(self.request_evidence_view),
                name="disputes_dispute_request_evidence",
            ),
            path(
                "<int:pk>/order-inspection/",
                wrap(self.order_inspection_view),
                name="disputes_dispute_order_inspection",
            ),
            path("<int:pk>/decide/", wrap(self.decide_view), name="disputes_dispute_decide"),
            path("<int:pk>/message/", wrap(self.message_view), name="disputes_dispute_message"),
            *super().get_urls(),
        ]

    def _dispute(self, request, pk) -> Dispute:
        if not self.has_view_permission(request):
            raise PermissionDenied
        dispute = selectors.dispute_for_staff(pk=int(pk))
        if dispute is None:
            raise Http404("No such dispute.")
        return dispute

    def _require_mediate(self, request) -> None:
        if not request.user.has_perm(MEDIATE):
            raise PermissionDenied

    def _case_url(self, dispute) -> str:
        return reverse("admin:disputes_dispute_change", args=[dispute.pk])

    def _context(self, request, dispute, **extra):
        from payments.selectors import escrow_summary

        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "dispute": dispute,
            "order": dispute.order,
            "title": f"{dispute.reference}: {dispute.get_type_display()}",
            "money": escrow_summary(escrow_reference=dispute.order.escrow_reference),
            "can_mediate": request.user.has_perm(MEDIATE),
            "is_mine": dispute.mediator_id == request.user.pk,
            "overdue": selectors.pickup_overdue(dispute),
        }
        context.update(extra)
        return context

    def change_view(self, request, object_id, form_url="", extra_context=None):
        dispute = self._dispute(request, object_id)
        return TemplateResponse(
            request,
            "admin/disputes/dispute/case.html",
            self._context(
                request,
                dispute,
                events=list(dispute.events.all()),
                chat=list(dispute.messages.all()),
                proposals=list(dispute.proposals.all()),
                evidence=list(dispute.evidence.all()),
                requests=list(dispute.evidence_requests.all()),
                inspections=list(dispute.inspections.all()),
                items=list(dispute.order.current_version.items.all()),
                order_thread=list(order_messages(order=dispute.order)),
                preshipment_reports=inspection_reports_for_order(order_id=dispute.order_id),
                now=clock.now(),
            ),
        )

    def assign_view(self, request, pk):
        self._require_mediate(request)
        dispute = self._dispute(request, pk)
        if request.method != "POST":
            return HttpResponseRedirect(self._case_url(dispute))
        try:
            services.dispute_assign(dispute=dispute, actor=request.user)
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
        else:
            self.message_user(request, f"{dispute.reference} is now yours.", messages.SUCCESS)
        return HttpResponseRedirect(self._case_url(dispute))

    def message_view(self, request, pk):
        """The mediator writes to both parties (shown on the dispute page and notified)."""
        self._require_mediate(request)
        dispute = self._dispute(request, pk)
        if request.method == "POST":
            try:
                services.dispute_message_send(
                    dispute=dispute, actor=request.user, body=request.POST.get("body", "")
                )
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                self.message_user(request, "Message sent to both parties.", messages.SUCCESS)
        return HttpResponseRedirect(self._case_url(dispute))

    def _form_page(self, request, dispute, form, *, heading, button, preview=None, status=200):
        return TemplateResponse(
            request,
            "admin/disputes/dispute/intermediate.html",
            self._context(
                request, dispute, form=form, heading=heading, button=button, preview=preview
            ),
            status=status,
        )

    @staticmethod
    def _errors(form, error: DomainError) -> None:
        placed = False
        for name, problems in (error.fields or {}).items():
            for problem in problems:
                form.add_error(name if name in form.fields else None, problem)
                placed = True
        if not placed:
            form.add_error(None, error.message)

    def request_evidence_view(self, request, pk):
        self._require_mediate(request)
        dispute = self._dispute(request, pk)
        form = EvidenceRequestForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                services.dispute_request_evidence(
                    dispute=dispute,
                    actor=request.user,
                    requested_from=form.cleaned_data["requested_from"],
                    note=form.cleaned_data["note"],
                    due_at=form.due_at(),
                )
            except DomainError as error:
                self._errors(form, error)
            else:
                self.message_user(request, "Evidence requested.", messages.SUCCESS)
                return HttpResponseRedirect(self._case_url(dispute))
        return self._form_page(
            request,
            dispute,
            form,
            heading="Request evidence",
            button="Request",
            status=400 if request.method == "POST" else 200,
        )

    def order_inspection_view(self, request, pk):
        self._require_mediate(request)
        dispute = self._dispute(request, pk)
        form = InspectionOrderForm(
            request.POST or None,
            initial={"fee_amount": services.inspection_fee_default(dispute.currency)},
        )
        if request.method == "POST" and form.is_valid():
            try:
                services.dispute_order_inspection(
                    dispute=dispute,
                    actor=request.user,
                    organisation=form.cleaned_data["organisation"],
                    instructions=form.cleaned_data["instructions"],
                    fee_amount=form.cleaned_data["fee_amount"],
                )
            except DomainError as error:
                self._errors(form, error)
            else:
                self.message_user(
                    request,
                    "Inspection ordered; the buyer was asked to pay the fee.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(self._case_url(dispute))
        return self._form_page(
            request,
            dispute,
            form,
            heading=f"Order an inspection (fee in {dispute.currency}, paid by the buyer up front)",
            button="Order the inspection",
            status=400 if request.method == "POST" else 200,
        )

    def decide_view(self, request, pk):
        """Two steps: the form, then a preview of the money that moves; confirm executes."""
        self._require_mediate(request)
        dispute = self._dispute(request, pk)
        initial = {"remedy": dispute.requested_remedy, "refund_amount": dispute.requested_amount}
        form = DecisionForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            terms = form.terms()
            try:
                checked = outcome_terms_check(dispute=dispute, terms=terms, allow_no_refund=True)
                if request.POST.get("confirm") == "yes":
                    services.dispute_decide(
                        dispute=dispute,
                        actor=request.user,
                        terms=checked,
                        reason=form.cleaned_data["reason"],
                        supplier_at_fault=form.cleaned_data["supplier_at_fault"],
                    )
                    self.message_user(
                        request,
                        f"{dispute.reference} decided: {describe_terms(checked, dispute.currency)}.",
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(self._case_url(dispute))
            except DomainError as error:
                self._errors(form, error)
            else:
                preview = outcome_preview(dispute=dispute, terms=checked)
                preview["text"] = describe_terms(checked, dispute.currency)
                preview["no_refund_resumes"] = (
                    checked.remedy == Remedy.NO_REFUND and preview["release"] == 0
                )
                return self._form_page(
                    request,
                    dispute,
                    form,
                    heading="Confirm the decision",
                    button="Confirm and execute",
                    preview=preview,
                )
        return self._form_page(
            request,
            dispute,
            form,
            heading="Decide",
            button="Preview the decision",
            status=400 if request.method == "POST" else 200,
        )
