"""Dispute pages for buyers, suppliers and inspectors. Views parse input, call a service or a
selector, and render; a refused action becomes a form error or a message, never a 500."""

from decimal import Decimal
from typing import cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from disputes import selectors, services
from disputes.forms import (
    DisputeOpenForm,
    EvidenceForm,
    InspectionFeeForm,
    InspectionReportForm,
    MessageForm,
    NoteForm,
    ProposalForm,
    RejectForm,
)
from disputes.models import DisputeStatus
from orders import selectors as order_selectors
from orders.inspection import selectors as preshipment_selectors
from orders.models import ContractVersion
from tradeassure.core.errors import DomainError, NotFound
from tradeassure.core.uploads import upload_response


def _form_errors(form, error: DomainError) -> None:
    """Put a service's refusal on the form: per field when it names fields, else on top."""
    placed = False
    for name, problems in (error.fields or {}).items():
        target = name if name in form.fields else None
        for problem in problems:
            form.add_error(target, problem)
            placed = True
    if not placed:
        form.add_error(None, error.message)


def _files(request) -> list:
    return request.FILES.getlist("files")


# --- filing ----------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def dispute_open(request, order_pk: int):
    try:
        order = order_selectors.order_for_user(user=request.user, pk=order_pk)
    except NotFound as error:
        raise Http404(error.message) from error
    refusal = services.dispute_open_refusal(order=order, user=request.user)
    if refusal:
        if refusal.startswith("Only the buyer"):
            raise Http404("No such order.")
        messages.error(request, refusal)
        return redirect(order.get_absolute_url())
    choices = services.dispute_allowed_types(order=order)
    form = DisputeOpenForm(request.POST or None, request.FILES or None, type_choices=choices)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                dispute = services.dispute_open(
                    order=order,
                    actor=request.user,
                    type=form.cleaned_data["type"],
                    description=form.cleaned_data["description"],
                    terms=form.terms(),
                    evidence_files=_files(request),
                )
            except DomainError as error:
                _form_errors(form, error)
            else:
                messages.success(
                    request,
                    f"Dispute {dispute.reference} opened. The order is frozen; the supplier has "
                    "3 days to answer.",
                )
                return redirect(dispute.get_absolute_url())
        status = 400
    from payments.selectors import escrow_summary

    return render(
        request,
        "disputes/open.html",
        {
            "order": order,
            "form": form,
            "money": escrow_summary(escrow_reference=order.escrow_reference),
        },
        status=status,
    )


# --- list and page -----------------------------------------------------------------------------


@login_required
@require_GET
def dispute_list(request):
    status_filter = request.GET.get("status", "")
    disputes = selectors.dispute_list(user=request.user, status_filter=status_filter)
    from django.core.paginator import Paginator

    page = Paginator(disputes, 25).get_page(request.GET.get("page"))
    return render(
        request,
        "disputes/list.html",
        {
            "page": page,
            "disputes": page.object_list,
            "status_filter": status_filter,
            "statuses": DisputeStatus.choices,
        },
    )


def _dispute_or_404(request, pk: int):
    try:
        return selectors.dispute_for_user(user=request.user, pk=pk)
    except NotFound as error:
        raise Http404(error.message) from error


def _render_detail(request, dispute, forms: dict | None = None, status: int = 200):
    from payments.selectors import escrow_summary

    actions = selectors.dispute_page_actions(dispute=dispute, user=request.user)
    context = {
        "dispute": dispute,
        "order": dispute.order,
        "progress": selectors.dispute_progress(dispute),
        "actions": actions,
        "events": list(dispute.events.all()),
        "chat": list(dispute.messages.all()),
        "proposals": list(dispute.proposals.all()),
        "evidence": list(dispute.evidence.all()),
        "requests": list(dispute.evidence_requests.all()),
        "inspections": list(dispute.inspections.all()),
        "items": list(dispute.order.current_version.items.all())
        if dispute.order.current_version_id
        else [],
        "money": escrow_summary(escrow_reference=dispute.order.escrow_reference),
        "message_form": MessageForm(),
        "proposal_form": ProposalForm(),
        "reject_form": RejectForm(),
        "evidence_form": EvidenceForm(),
        "note_form": NoteForm(),
        "fee_form": InspectionFeeForm(),
    }
    context.update(forms or {})
    return render(request, "disputes/detail.html", context, status=status)


@login_required
@require_GET
def dispute_detail(request, pk: int):
    return _render_detail(request, _dispute_or_404(request, pk))


def _post(request, pk: int, form_class, form_key: str, call, done: str):
    """The shape of every dispute POST: parse, call the service, redirect or re-render."""
    dispute = _dispute_or_404(request, pk)
    form = form_class(request.POST, request.FILES or None) if form_class else None
    if form is None or form.is_valid():
        try:
            call(dispute, form)
        except DomainError as error:
            if form is None or not set(error.fields or {}) & set(form.fields):
                # A refused action (too early, not your turn…): say why on the page.
                messages.error(request, error.message)
                return redirect(dispute.get_absolute_url())
            _form_errors(form, error)
        else:
            messages.success(request, done)
            return redirect(dispute.get_absolute_url())
    dispute = _dispute_or_404(request, pk)
    return _render_detail(request, dispute, {form_key: form}, status=400)


@login_required
@require_POST
def dispute_message(request, pk: int):
    return _post(
        request,
        pk,
        MessageForm,
        "message_form",
        lambda d, f: services.dispute_message_send(
            dispute=d, actor=request.user, body=f.cleaned_data["body"]
        ),
        "Message sent.",
    )


@login_required
@require_POST
def dispute_propose(request, pk: int):
    return _post(
        request,
        pk,
        ProposalForm,
        "proposal_form",
        lambda d, f: services.dispute_propose(
            dispute=d, actor=request.user, terms=f.terms(), message=f.cleaned_data["message"]
        ),
        "Proposal sent. The other side can accept it to settle at once.",
    )


@login_required
@require_POST
def dispute_reject(request, pk: int):
    return _post(
        request,
        pk,
        RejectForm,
        "reject_form",
        lambda d, f: services.dispute_reject(
            dispute=d,
            actor=request.user,
            message=f.cleaned_data["message"],
            evidence_files=_files(request),
        ),
        "Proposal rejected.",
    )


@login_required
@require_http_methods(["GET", "POST"])
def dispute_accept(request, pk: int, proposal_pk: int):
    """Accepting settles the dispute and moves money at once, so it takes two steps: GET (or a
    POST without `confirmed=yes`) shows what will be refunded and released; the confirmed POST
    accepts. A replayed confirmed POST is refused by the service (the proposal is closed)."""
    if request.method == "GET" or request.POST.get("confirmed") != "yes":
        if request.method == "POST":
            return redirect("disputes:accept", pk=pk, proposal_pk=proposal_pk)
        return _accept_confirm(request, pk, proposal_pk)
    return _post(
        request,
        pk,
        None,
        "",
        lambda d, f: services.dispute_accept(
            dispute=d, actor=request.user, proposal_id=proposal_pk
        ),
        "Proposal accepted: the dispute is settled and the outcome carried out.",
    )


def _accept_confirm(request, pk: int, proposal_pk: int):
    from payments.selectors import escrow_summary

    dispute = _dispute_or_404(request, pk)
    actions = selectors.dispute_page_actions(dispute=dispute, user=request.user)
    proposal = actions.accept
    if proposal is None or proposal.pk != proposal_pk:
        messages.error(request, "This proposal cannot be accepted by you now.")
        return redirect(dispute.get_absolute_url())
    money = escrow_summary(escrow_reference=dispute.order.escrow_reference)
    refund = release = None
    if proposal.remedy == "full_refund":
        refund, release = money.held, Decimal(0)
    elif proposal.remedy == "partial_refund" and proposal.refund_amount is not None:
        refund = proposal.refund_amount
        release = max(Decimal(0), money.held - proposal.refund_amount)
    elif proposal.remedy == "no_refund":
        refund, release = Decimal(0), money.held
    return render(
        request,
        "disputes/accept_confirm.html",
        {
            "dispute": dispute,
            "order": dispute.order,
            "proposal": proposal,
            "party": actions.party,
            "money": money,
            "refund": refund,
            "release": release,
        },
    )


@login_required
@require_POST
def dispute_add_evidence(request, pk: int):
    return _post(
        request,
        pk,
        EvidenceForm,
        "evidence_form",
        lambda d, f: services.dispute_evidence_add(
            dispute=d,
            actor=request.user,
            files=_files(request),
            description=f.cleaned_data["description"],
        ),
        "Evidence added.",
    )


@login_required
@require_POST
def dispute_cite_message(request, order_pk: int):
    """From the order's conversation: offer one message as evidence in the order's open dispute."""
    try:
        dispute = selectors.open_dispute_of_order_for_user(user=request.user, order_pk=order_pk)
    except NotFound as error:
        raise Http404(error.message) from error
    message_id = str(request.POST.get("message_id", ""))
    if not message_id.isdigit():
        raise Http404("No such message.")
    try:
        services.dispute_cite_message(
            dispute=dispute,
            actor=request.user,
            message_id=int(message_id),
            note=str(request.POST.get("note", "")),
        )
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "The message is now evidence in the dispute.")
    return redirect(dispute.get_absolute_url())


@login_required
@require_POST
def dispute_withdraw(request, pk: int):
    return _post(
        request,
        pk,
        NoteForm,
        "note_form",
        lambda d, f: services.dispute_withdraw(
            dispute=d, actor=request.user, reason=f.cleaned_data["note"]
        ),
        "Dispute withdrawn. The order continues.",
    )


@login_required
@require_POST
def dispute_escalate(request, pk: int):
    return _post(
        request,
        pk,
        NoteForm,
        "note_form",
        lambda d, f: services.dispute_escalate(
            dispute=d, actor=request.user, note=f.cleaned_data["note"]
        ),
        "Escalated: a mediator will pick the dispute up within 2 working days.",
    )


@login_required
@require_POST
def dispute_inspection_pay(request, pk: int, inspection_pk: int):
    dispute = _dispute_or_404(request, pk)
    inspection = next((i for i in dispute.inspections.all() if i.pk == inspection_pk), None)
    if inspection is None:
        raise Http404("No such inspection.")
    form = InspectionFeeForm(request.POST)
    if not form.is_valid():
        return _render_detail(request, dispute, {"fee_form": form}, status=400)
    try:
        payment = services.dispute_inspection_fee_pay(
            inspection=inspection, actor=request.user, method=form.cleaned_data["method"]
        )
    except DomainError as error:
        messages.error(request, error.message)
        return redirect(dispute.get_absolute_url())
    return HttpResponseRedirect(payment.get_absolute_url())


@login_required
@require_GET
def evidence_file(request, pk: int, evidence_pk: int):
    """A stored evidence file, for the parties, mediators/staff and the inspector: else 404."""
    try:
        evidence = selectors.evidence_for_user(user=request.user, dispute_pk=pk, pk=evidence_pk)
    except NotFound as error:
        raise Http404(error.message) from error
    return upload_response(
        name=evidence.stored_name,
        download_name=evidence.original_name,
        content_type=evidence.content_type,
    )


# --- inspectors -------------------------------------------------------------------------------


@login_required
@require_GET
def inspector_home(request):
    if not request.user.is_inspector:
        raise Http404("This page is for inspection companies.")
    inspections = list(selectors.inspections_for_inspector(user=request.user))
    # Both kinds of assignment: a mediator's (disputes) and a buyer's before shipment (orders).
    preshipment = list(preshipment_selectors.inspections_for_inspector(user=request.user))
    return render(
        request,
        "disputes/inspector_home.html",
        {
            "assigned": [i for i in inspections if i.state == "assigned"],
            "done": [i for i in inspections if i.state != "assigned"],
            "preshipment_waiting": [i for i in preshipment if i.status == "scheduled"],
            "preshipment_done": [i for i in preshipment if i.status != "scheduled"],
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def inspection_detail(request, pk: int):
    try:
        inspection = selectors.inspection_for_inspector(user=request.user, pk=pk)
    except NotFound as error:
        raise Http404(error.message) from error
    form = InspectionReportForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.inspection_report_submit(
                    inspection=inspection,
                    actor=request.user,
                    verdict=form.cleaned_data["verdict"],
                    findings=form.cleaned_data["findings"],
                    files=_files(request),
                )
            except DomainError as error:
                _form_errors(form, error)
            else:
                messages.success(request, "Report submitted. The mediator has been told.")
                return redirect("disputes:inspector_home")
        status = 400
    dispute = inspection.dispute
    return render(
        request,
        "disputes/inspection_detail.html",
        {
            "inspection": inspection,
            "dispute": dispute,
            "order": dispute.order,
            # A placed order always has a current version (null only inside order_place).
            "items": list(cast(ContractVersion, dispute.order.current_version).items.all()),
            "evidence": list(dispute.evidence.all()),
            "form": form,
        },
        status=status,
    )
