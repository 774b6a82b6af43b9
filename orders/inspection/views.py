"""The pre-shipment inspection on the pages: the panel of the order page (buyer: book, pay, cancel,
agree to a replacement; supplier: propose dates; both: dates, report, files, timeline), the report
files, and the inspector's report page. Views parse input and call a service; a refusal becomes a
message or a form error, never a 500; outsiders get 404."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from orders import selectors as order_selectors
from orders.inspection import selectors, services
from orders.inspection.forms import (
    InspectionBookForm,
    InspectionDatesForm,
    InspectionFeeForm,
    InspectionNoteForm,
    InspectionReportForm,
)
from orders.inspection.models import InspectionStatus
from orders.models import Order, Party
from orders.transitions import SHIPMENT_BLOCKED
from tradeassure.core.errors import DomainError, NotFound
from tradeassure.core.uploads import upload_response

S = InspectionStatus


def inspection_context(request, order: Order, party: str | None) -> dict:
    """What `orders/_inspection.html` needs (3 queries for the inspections, 1 for the companies
    when the buyer may book)."""
    inspections = selectors.order_inspections(order=order)
    refusal = services.inspection_book_refusal(order=order, user=request.user)
    return {
        "inspection_panel": {
            "inspections": inspections,
            "may_book": party == Party.BUYER and refusal is None,
            "book_refusal": refusal if party == Party.BUYER else None,
            "book_form": InspectionBookForm() if refusal is None else None,
            "fee": services.inspection_fee_for(order.currency),
            "working_days": services.inspection_working_days(),
            "fee_form": InspectionFeeForm(),
            "dates_form": InspectionDatesForm(),
            "note_form": InspectionNoteForm(),
            "blocked_message": SHIPMENT_BLOCKED if order.shipment_blocked_by_inspection else "",
        }
    }


def _order_or_404(request, pk: int) -> Order:
    try:
        return order_selectors.order_for_user(user=request.user, pk=pk)
    except NotFound as error:
        raise Http404(error.message) from error


def _inspection_or_404(request, order: Order, inspection_pk: int):
    try:
        inspection = selectors.inspection_for_user(user=request.user, pk=inspection_pk)
    except NotFound as error:
        raise Http404(error.message) from error
    if inspection.order_id != order.pk:
        raise Http404("No such inspection.")
    return inspection


def _done(request, order: Order, call, success: str):
    try:
        result = call()
    except DomainError as error:
        messages.error(request, error.message)
        return redirect(f"{order.get_absolute_url()}#inspection")
    messages.success(request, success)
    return result or redirect(f"{order.get_absolute_url()}#inspection")


def _first_error(form) -> str:
    for problems in form.errors.values():
        return str(problems[0])
    return "Check the form."


@login_required
@require_POST
def inspection_book(request, pk: int):
    order = _order_or_404(request, pk)
    form = InspectionBookForm(request.POST)
    if not form.is_valid():
        messages.error(request, _first_error(form))
        return redirect(f"{order.get_absolute_url()}#inspection")
    return _done(
        request,
        order,
        lambda: (
            services.preshipment_inspection_book(
                order=order,
                actor=request.user,
                organisation=form.cleaned_data["organisation"],
                instructions=form.cleaned_data["instructions"],
            )
            and None
        ),
        "Inspection booked. Pay the fee so the inspection company can start; the supplier "
        "has been told.",
    )


@login_required
@require_POST
def inspection_pay(request, pk: int, inspection_pk: int):
    order = _order_or_404(request, pk)
    inspection = _inspection_or_404(request, order, inspection_pk)
    form = InspectionFeeForm(request.POST)
    if not form.is_valid():
        messages.error(request, _first_error(form))
        return redirect(f"{order.get_absolute_url()}#inspection")
    try:
        payment = services.preshipment_inspection_fee_pay(
            inspection=inspection, actor=request.user, method=form.cleaned_data["method"]
        )
    except DomainError as error:
        messages.error(request, error.message)
        return redirect(f"{order.get_absolute_url()}#inspection")
    return HttpResponseRedirect(payment.get_absolute_url())


@login_required
@require_POST
def inspection_cancel(request, pk: int, inspection_pk: int):
    order = _order_or_404(request, pk)
    inspection = _inspection_or_404(request, order, inspection_pk)
    return _done(
        request,
        order,
        lambda: (
            services.preshipment_inspection_cancel(inspection=inspection, actor=request.user)
            and None
        ),
        "Inspection booking cancelled.",
    )


@login_required
@require_POST
def inspection_dates(request, pk: int, inspection_pk: int):
    order = _order_or_404(request, pk)
    inspection = _inspection_or_404(request, order, inspection_pk)
    return _form_done(
        request,
        order,
        InspectionDatesForm(request.POST),
        lambda form: services.preshipment_inspection_propose_dates(
            inspection=inspection,
            actor=request.user,
            dates=form.dates(),
            note=form.cleaned_data["note"],
        ),
        "Dates proposed. The buyer and the inspection company have been told.",
    )


@login_required
@require_POST
def inspection_agree_replacement(request, pk: int, inspection_pk: int):
    order = _order_or_404(request, pk)
    inspection = _inspection_or_404(request, order, inspection_pk)
    return _form_done(
        request,
        order,
        InspectionNoteForm(request.POST),
        lambda form: services.preshipment_inspection_agree_replacement(
            inspection=inspection, actor=request.user, note=form.cleaned_data["note"]
        ),
        "Replacement agreed: the supplier may ship the replacement goods.",
    )


def _form_done(request, order: Order, form, call, success: str):
    """A posted form for a service call: its first error back on the order page, or `_done`."""
    if not form.is_valid():
        messages.error(request, _first_error(form))
        return redirect(f"{order.get_absolute_url()}#inspection")
    return _done(request, order, lambda: call(form) and None, success)


@login_required
@require_GET
def inspection_file(request, inspection_pk: int, file_pk: int):
    """A report file, for the order's parties, the inspection company and permitted staff."""
    try:
        file = selectors.inspection_file_for_user(
            user=request.user, inspection_pk=inspection_pk, pk=file_pk
        )
    except NotFound as error:
        raise Http404(error.message) from error
    return upload_response(
        name=file.stored_name, download_name=file.original_name, content_type=file.content_type
    )


@login_required
@require_http_methods(["GET", "POST"])
def inspection_report(request, inspection_pk: int):
    """The inspector's page for one pre-shipment inspection: the contract, the buyer's
    instructions, the supplier's dates, and the report form."""
    try:
        inspection = selectors.inspection_for_inspector(user=request.user, pk=inspection_pk)
    except NotFound as error:
        raise Http404(error.message) from error
    form = InspectionReportForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.preshipment_inspection_report(
                    inspection=inspection,
                    actor=request.user,
                    verdict=form.cleaned_data["verdict"],
                    findings=form.cleaned_data["findings"],
                    files=request.FILES.getlist("files"),
                )
            except DomainError as error:
                placed = False
                for name, problems in (error.fields or {}).items():
                    for problem in problems:
                        form.add_error(name if name in form.fields else None, problem)
                        placed = True
                if not placed:
                    form.add_error(None, error.message)
            else:
                messages.success(
                    request, "Report submitted. The buyer and the supplier have been told."
                )
                return redirect("disputes:inspector_home")
        status = 400
    return render(
        request,
        "orders/inspection_report.html",
        {
            "inspection": inspection,
            "order": inspection.order,
            "items": list(inspection.contract_version.items.all()),
            "form": form,
            "may_report": inspection.status == S.SCHEDULED,
        },
        status=status,
    )
