"""Order pages for buyers and suppliers. Views parse input, call a service or selector, render."""

from decimal import Decimal, InvalidOperation
from typing import cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.team import REFUSALS, Capability, team_allows
from orders import selectors, services
from orders.conversation.selectors import orders_with_unread_counts
from orders.conversation.views import conversation_context
from orders.forms import (
    ExtendShipmentDeadlineForm,
    NoteForm,
    OrderCreateForm,
    PayForm,
    ProposalForm,
    RateForm,
    ShipmentForm,
    default_deadline,
    initial_from_terms,
    line_items_formset,
    terms_from_forms,
)
from orders.inspection.views import inspection_context
from orders.models import ContractVersion, Order, OrderStatus, Party, ShipmentDocument
from orders.transitions import SHIPMENT_BLOCKED
from suppliers.models import Product, Supplier
from suppliers.selectors import supplier_limit_left_usd, supplier_refusal_message
from tradeassure.core import clock
from tradeassure.core.errors import DomainError, NotFound
from tradeassure.core.money import MINOR_UNITS, round_money
from tradeassure.core.uploads import upload_response

PAGE_SIZE = 20
LIVE_TOTALS_LIMIT = Decimal(10) ** 12


def _apply_errors(error: DomainError, form, item_errors: list[str]) -> None:
    """Show a service's refusal on the form: per field where it names one, else on top."""
    placed = False
    for key, problems in (error.fields or {}).items():
        for problem in problems if isinstance(problems, list) else [problems]:
            if key == "items":
                item_errors.append(str(problem))
                placed = True
            elif form is not None and key in form.fields:
                form.add_error(key, str(problem))
                placed = True
    if not placed and form is not None:
        form.add_error(None, error.message)
    elif not placed:
        item_errors.append(error.message)


# --- placing an order ------------------------------------------------------------------------


def _order_start(request) -> tuple[Supplier, Product | None]:
    product_id = request.GET.get("product") or request.POST.get("product_id")
    supplier_id = request.GET.get("supplier") or request.POST.get("supplier_id")
    if product_id:
        if not str(product_id).isdigit():
            raise Http404("No such product.")
        product = get_object_or_404(
            Product.objects.select_related("supplier"), pk=product_id, is_active=True
        )
        return product.supplier, product
    if supplier_id and str(supplier_id).isdigit():
        return get_object_or_404(Supplier, pk=supplier_id), None
    raise Http404("Start an order from a supplier or a product page.")


@login_required
@require_http_methods(["GET", "POST"])
def order_create(request):
    """Buyer: write the contract (line items formset, live totals), review it, submit it."""
    if not request.user.is_buyer:
        return HttpResponseForbidden("Only buyers place orders.")
    if not team_allows(request.user, Capability.TRADE):
        return HttpResponseForbidden(REFUSALS[Capability.TRADE])
    supplier, product = _order_start(request)
    refusal = supplier_refusal_message(supplier=supplier)
    if refusal is not None:
        # Said before the buyer writes a contract, in plain words, not after submitting it.
        return render(
            request,
            "orders/create_unavailable.html",
            {"supplier": supplier, "product": product, "refusal": refusal},
            status=200 if request.method == "GET" else 409,
        )
    item_errors: list[str] = []
    step = request.POST.get("step", "edit")
    if request.method == "GET" or step == "back":
        data = request.POST if step == "back" else None
        initial = {
            "currency": product.currency if product else "USD",
            "shipment_deadline": default_deadline(product),
            "destination": "",
        }
        items_initial = None
        if product is not None:
            items_initial = [
                {
                    "product": product.pk,
                    "description": product.name,
                    "specifications": product.specifications,
                    "quantity": product.minimum_order_quantity,
                    "unit": product.unit,
                    "unit_price": product.unit_price,
                }
            ]
        form = OrderCreateForm(data, initial=initial)
        formset = line_items_formset(data, supplier=supplier, initial=items_initial)
        return _render_create(request, supplier, product, form, formset, item_errors)

    if step == "add_line":
        data = _with_one_more_line(request.POST)
        form = OrderCreateForm(data)
        formset = line_items_formset(data, supplier=supplier)
        return _render_create(request, supplier, product, form, formset, item_errors)
    form = OrderCreateForm(request.POST)
    formset = line_items_formset(request.POST, supplier=supplier)
    if form.is_valid() and formset.is_valid():
        terms = terms_from_forms(form, formset, currency_errors=item_errors)
        if not item_errors:
            try:
                if step == "submit":
                    order = services.order_place(
                        buyer=request.user,
                        supplier=supplier,
                        terms=terms,
                        purchase_order_number=form.cleaned_data["purchase_order_number"],
                        note=form.cleaned_data["note"],
                    )
                    messages.success(
                        request,
                        f"Order {order.reference} placed. {supplier} has "
                        f"{settings.TRADE_ASSURANCE['SUPPLIER_CONFIRMATION_WINDOW'].days} days "
                        "to confirm it.",
                    )
                    return redirect(order)
                totals = services.order_terms_check(supplier=supplier, terms=terms)
                return render(
                    request,
                    "orders/create_review.html",
                    {
                        "supplier": supplier,
                        "product": product,
                        "form": form,
                        "formset": formset,
                        "terms": terms,
                        "totals": totals,
                        "lines": list(zip(terms.items, totals.line_totals, strict=True)),
                    },
                )
            except DomainError as error:
                _apply_errors(error, form, item_errors)
    return _render_create(request, supplier, product, form, formset, item_errors, status=400)


def _with_one_more_line(data):
    """The same input with one more (empty) line item form: adding a line needs no script."""
    data = data.copy()
    try:
        count = int(data.get("items-TOTAL_FORMS", 1))
    except (TypeError, ValueError):
        count = 1
    data["items-TOTAL_FORMS"] = str(min(max(count, 0) + 1, 50))
    return data


def _render_create(request, supplier, product, form, formset, item_errors, status=200):
    return render(
        request,
        "orders/create.html",
        {
            "supplier": supplier,
            "product": product,
            "form": form,
            "formset": formset,
            "item_errors": item_errors,
            "totals": _live_totals(request.POST) if request.method == "POST" else None,
            "limit_left_usd": supplier_limit_left_usd(supplier=supplier),
        },
        status=status,
    )


def _decimal(value) -> Decimal | None:
    try:
        result = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    # Anything a form would refuse (not finite, absurdly large) counts as "not typed yet".
    return result if result.is_finite() and abs(result) < LIVE_TOTALS_LIMIT else None


def _live_totals(data) -> dict:
    """Best-effort totals from whatever is typed so far (the service recomputes on submit)."""
    currency = data.get("currency") if data.get("currency") in MINOR_UNITS else "USD"
    try:
        count = min(int(data.get("items-TOTAL_FORMS", 0)), 50)
    except (TypeError, ValueError):
        count = 0
    product_prices = {}
    product_ids = [data.get(f"items-{i}-product") for i in range(count)]
    product_ids = [int(pk) for pk in product_ids if pk and str(pk).isdigit()]
    if product_ids:
        product_prices = {
            product.pk: product
            for product in Product.objects.filter(pk__in=product_ids, currency=currency)
        }
    lines: list[Decimal | None] = []
    subtotal = Decimal(0)
    for index in range(count):
        if data.get(f"items-{index}-DELETE"):
            continue
        quantity = _decimal(data.get(f"items-{index}-quantity"))
        price = _decimal(data.get(f"items-{index}-unit_price"))
        product_id = data.get(f"items-{index}-product")
        if price is None and product_id and str(product_id).isdigit():
            product = product_prices.get(int(product_id))
            price = product.unit_price if product else None
        if quantity is None or price is None or quantity <= 0 or price <= 0:
            lines.append(None)
            continue
        line_total = round_money(quantity * price, currency)
        lines.append(line_total)
        subtotal += line_total
    fee = _decimal(data.get("shipping_fee")) or Decimal(0)
    fee = round_money(max(fee, Decimal(0)), currency)
    total = round_money(subtotal + fee, currency)
    initial = _decimal(data.get("initial_payment_amount"))
    initial = round_money(initial, currency) if initial is not None and initial > 0 else None
    return {
        "currency": currency,
        "lines": lines,
        "subtotal": round_money(subtotal, currency),
        "shipping_fee": fee,
        "total": total,
        "initial": initial,
        "balance": total - initial if initial is not None and initial <= total else None,
        # Only a typed initial payment above the total is an error; nothing typed yet is not.
        "initial_over_total": initial is not None and initial > total,
    }


@login_required
@require_POST
def order_totals(request):
    """htmx partial: the live totals of the contract being written."""
    return render(request, "orders/_totals.html", {"totals": _live_totals(request.POST)})


# --- lists -----------------------------------------------------------------------------------


def _list(request, *, party: str, template: str, extra: dict | None = None):
    status_filter = request.GET.get("status", "")
    search = request.GET.get("q", "")[:100]
    orders = orders_with_unread_counts(
        selectors.order_list(
            user=request.user, party=party, status_filter=status_filter, search=search
        ),
        organisation_id=request.user.organisation_id,
    )
    page = Paginator(orders, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "orders": page.object_list,
        "status_filter": status_filter,
        "search": search,
        "filters": [(key, label) for key, (label, _s) in selectors.STATUS_FILTERS.items()],
        "statuses": OrderStatus.choices,
        "now": clock.now(),
    }
    context.update(extra or {})
    return render(request, template, context)


@login_required
@require_GET
def buyer_list(request):
    if not request.user.is_buyer:
        return HttpResponseForbidden("This page is for buyers.")
    return _list(request, party=Party.BUYER, template="orders/buyer_list.html")


@login_required
@require_GET
def supplier_list(request):
    if not request.user.is_supplier_staff:
        return HttpResponseForbidden("This page is for supplier staff.")
    # The work queue at the top comes from the `supplier_work_queue` tag.
    return _list(request, party=Party.SUPPLIER, template="orders/supplier_list.html")


# --- the order page --------------------------------------------------------------------------


def _order_or_404(request, pk: int) -> Order:
    try:
        return selectors.order_for_user(user=request.user, pk=pk)
    except NotFound as error:
        raise Http404(error.message) from error


def _share_organisation(user, order: Order) -> None:
    """The page's header names the user's organisation: it is one the order already loaded
    (buyer organisation, or the supplier's), so lend it instead of reading it again."""
    if user.organisation_id == order.buyer_organisation_id:
        user.organisation = order.buyer_organisation
    elif user.organisation_id == order.supplier.organisation_id:
        user.organisation = order.supplier.organisation


@login_required
@require_GET
def order_detail(request, pk: int):
    order = _order_or_404(request, pk)
    from payments.selectors import escrow_summary

    _share_organisation(request.user, order)
    party = selectors.order_party(order=order, user=request.user)
    actions = selectors.order_actions(order=order, user=request.user)
    action_names = {row.action for row in actions}
    payment_due = services.order_payment_due(order) if party == Party.BUYER else None
    # The role table: who may press "Pay", who sees the escrow's figures.
    can_pay = team_allows(request.user, Capability.PAY)
    can_see_money = team_allows(request.user, Capability.SEE_MONEY)
    pay_now = payment_due if can_pay else None
    # Every shipment, oldest first (a replacement agreed in a dispute keeps the first one).
    shipments = list(order.shipments.all())
    rating = getattr(order, "rating", None) if order.rating_score is not None else None
    history = selectors.contract_history(order)
    current = next((v for v, _d in history if v.pk == order.current_version_id), None)
    proposal = next((v for v, d in history if v.state == "proposed"), None)
    proposal_differences = next((d for v, d in history if v.state == "proposed"), [])
    primary = selectors.order_primary_action(actions, payment_due=bool(pay_now))
    # The next step first, the other actions after it.
    actions = sorted(actions, key=lambda row: row.action != primary)
    money = escrow_summary(escrow_reference=order.escrow_reference) if can_see_money else None
    return render(
        request,
        "orders/detail.html",
        {
            "order": order,
            "party": party,
            "current": current,
            "history": history,
            "proposal": proposal,
            "proposal_differences": proposal_differences,
            "money": money,
            "progress": selectors.order_progress(order),
            "primary": primary,
            "waiting_for": selectors.order_waiting_for(order),
            "events": list(order.events.all()),
            "actions": actions,
            "action_names": action_names,
            "simple_actions": [row for row in actions if row.action in SIMPLE_ACTIONS],
            "payment_due": payment_due,
            "pay_now": pay_now,
            "can_see_money": can_see_money,
            "pay_form": PayForm(),
            "extend_form": ExtendShipmentDeadlineForm(
                initial={"new_deadline": (order.shipment_deadline.date())}
            ),
            "rate_form": RateForm(),
            "shipments": shipments,
            "rating": rating,
            "now": clock.now(),
            **conversation_context(request, order),
            **inspection_context(request, order, party),
        },
    )


# Actions that are one POST with an optional note (or reason), and the service each calls.
SIMPLE_ACTIONS = {
    "confirm": lambda order, user, note: services.order_confirm(order=order, actor=user, note=note),
    "accept_changes": lambda order, user, note: services.order_accept_changes(
        order=order, actor=user, note=note
    ),
    "decline_changes": lambda order, user, note: services.order_decline_changes(
        order=order, actor=user, note=note
    ),
    "withdraw_changes": lambda order, user, note: services.order_withdraw_changes(
        order=order, actor=user, note=note
    ),
    "request_balance": lambda order, user, note: services.order_request_balance(
        order=order, actor=user, note=note
    ),
    "mark_ready": lambda order, user, note: services.order_mark_ready(
        order=order, actor=user, note=note
    ),
    "confirm_receipt": lambda order, user, note: services.order_confirm_receipt(
        order=order, actor=user, note=note
    ),
    "extend_receipt_window": lambda order, user, note: services.order_extend_receipt_window(
        order=order, actor=user, note=note
    ),
    "accept_goods": lambda order, user, note: services.order_accept_goods(
        order=order, actor=user, note=note
    ),
    "cancel_late_with_refund": lambda order, user, note: services.order_cancel_late_with_refund(
        order=order, actor=user, reason=note
    ),
    "cancel_after_failed_inspection": lambda order, user, note: (
        services.order_cancel_after_failed_inspection(order=order, actor=user, reason=note)
    ),
    "cancel": lambda order, user, note: services.order_cancel(order=order, actor=user, reason=note),
}

DONE_MESSAGES = {
    "confirm": "Order confirmed. The buyer has been asked to pay the initial payment.",
    "accept_changes": "Changes accepted: they are now the contract.",
    "decline_changes": "Changes declined.",
    "withdraw_changes": "Proposal withdrawn.",
    "request_balance": "Balance requested from the buyer.",
    "mark_ready": "Marked ready to ship.",
    "confirm_receipt": "Receipt confirmed.",
    "extend_receipt_window": "Receipt window extended by 15 days.",
    "accept_goods": "Goods accepted; the payment is released to the supplier.",
    "cancel_late_with_refund": "Order cancelled; your payment is being refunded in full.",
    "cancel_after_failed_inspection": "Order cancelled; your payment is being refunded in full.",
    "cancel": "Order cancelled.",
}


# Actions that release money for good: the first POST only leads to a page that shows the
# amount; the money moves when that page's form is sent (with `confirmed=yes`).
CONFIRMED_ACTIONS = {"accept_goods"}


@login_required
@require_GET
def order_accept_goods_confirm(request, pk: int):
    """Buyer: what accepting the goods releases, before it is released (nothing changes here)."""
    order = _order_or_404(request, pk)
    from payments.selectors import escrow_summary

    if "accept_goods" not in {
        row.action for row in selectors.order_actions(order=order, user=request.user)
    }:
        messages.error(request, "The goods cannot be accepted by you now.")
        return redirect(order)
    money = escrow_summary(escrow_reference=order.escrow_reference)
    return render(request, "orders/accept_goods_confirm.html", {"order": order, "money": money})


@login_required
@require_POST
def order_action(request, pk: int, action: str):
    """One of the simple transitions, by name; the service checks the map and the actor."""
    order = _order_or_404(request, pk)
    if action not in SIMPLE_ACTIONS:
        raise Http404("No such action.")
    if action in CONFIRMED_ACTIONS and request.POST.get("confirmed") != "yes":
        # One click never releases money: show the amount and ask again.
        return redirect("orders:accept_goods_confirm", pk=order.pk)
    form = NoteForm({"note": request.POST.get("note") or request.POST.get("reason", "")})
    if not form.is_valid():
        messages.error(request, "The note is too long (1,000 characters at most).")
        return redirect(order)
    try:
        SIMPLE_ACTIONS[action](order, request.user, form.cleaned_data["note"])
    except DomainError as error:
        messages.error(request, error.message)
        return redirect(order)
    messages.success(request, DONE_MESSAGES[action])
    return redirect(order)


@login_required
@require_POST
def order_pay(request, pk: int):
    """Buyer: start the payment due now and go to the payment page to complete it."""
    order = _order_or_404(request, pk)
    form = PayForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose card or bank transfer.")
        return redirect(order)
    try:
        payment = services.order_payment_start(
            order=order,
            actor=request.user,
            method=form.cleaned_data["method"],
            return_url=order.get_absolute_url(),
        )
    except DomainError as error:
        messages.error(request, error.message)
        return redirect(order)
    return redirect(payment.get_absolute_url())


@login_required
@require_POST
def order_extend_shipment_deadline(request, pk: int):
    order = _order_or_404(request, pk)
    form = ExtendShipmentDeadlineForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a valid new deadline.")
        return redirect(order)
    try:
        services.order_extend_shipment_deadline(
            order=order,
            actor=request.user,
            new_deadline=form.cleaned_data["new_deadline"],
            note=form.cleaned_data["note"],
        )
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Shipment deadline extended.")
    return redirect(order)


@login_required
@require_POST
def order_rate(request, pk: int):
    order = _order_or_404(request, pk)
    form = RateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Rate from 1 to 5 stars.")
        return redirect(order)
    try:
        services.order_rate(
            order=order,
            actor=request.user,
            score=form.cleaned_data["score"],
            comment=form.cleaned_data["comment"],
        )
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Thank you for rating this order.")
    return redirect(order)


@login_required
@require_http_methods(["GET", "POST"])
def order_ship(request, pk: int):
    """Supplier: record carrier, tracking number, ship date and the shipping documents."""
    order = _order_or_404(request, pk)
    if "ship" not in {
        row.action for row in selectors.order_actions(order=order, user=request.user)
    }:
        blocked = order.shipment_blocked_by_inspection and order.status == "ready_to_ship"
        messages.error(
            request, SHIPMENT_BLOCKED if blocked else "This order cannot be shipped by you now."
        )
        return redirect(order)
    form = ShipmentForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.order_ship(
                order=order,
                actor=request.user,
                carrier=data["carrier"],
                tracking_number=data["tracking_number"],
                shipped_on=data["shipped_on"],
                documents=[
                    services.ShipmentDocumentUpload(kind=kind, file=data[kind])
                    for kind in ShipmentDocument.Kind.values
                ],
                note=data["note"],
            )
        except DomainError as error:
            _apply_errors(error, form, [])
        else:
            messages.success(request, "Shipment recorded. The buyer has been told.")
            return redirect(order)
    status = 400 if request.method == "POST" else 200
    # A browser cannot keep a chosen file once the page comes back with an error: say which
    # files were chosen and ask for each again, instead of silently emptying the fields.
    chosen = {
        kind: request.FILES[kind].name
        for kind in ShipmentDocument.Kind.values
        if kind in request.FILES
    }
    for kind, name in chosen.items():
        # The bound field copied its help text when the form was validated: set it there.
        form[kind].help_text = f"You chose “{name}”: choose it again (nothing was saved)."
    return render(
        request,
        "orders/ship.html",
        {"order": order, "form": form, "files_to_choose_again": list(chosen.values())},
        status=status,
    )


@login_required
@require_GET
def shipment_document(request, pk: int, document_pk: int):
    """A shipping document, for the two parties and staff only (404 for everyone else)."""
    try:
        document = selectors.shipment_document_for_user(
            user=request.user, order_pk=pk, pk=document_pk
        )
    except NotFound as error:
        raise Http404(error.message) from error
    return upload_response(
        name=document.stored_name,
        download_name=document.original_name,
        content_type=document.content_type,
    )


@login_required
@require_http_methods(["GET", "POST"])
def order_propose_changes(request, pk: int):
    """A party proposes a new contract version (the supplier instead of confirming, or later)."""
    order = _order_or_404(request, pk)
    if "propose_changes" not in {
        row.action for row in selectors.order_actions(order=order, user=request.user)
    }:
        messages.error(request, "You cannot propose changes to this order now.")
        return redirect(order)
    frozen = services.money_is_held(order)
    # A placed order always has a current version (null only inside order_place).
    terms = services.contract_terms_of(cast(ContractVersion, order.current_version))
    contract_initial, items_initial = initial_from_terms(terms)
    data = request.POST if request.method == "POST" else None
    adding = data is not None and data.get("step") == "add_line" and not frozen
    if adding:
        data = _with_one_more_line(data)
    form = ProposalForm(data, initial=contract_initial, money_frozen=frozen)
    formset = line_items_formset(
        data, supplier=order.supplier, initial=items_initial, money_frozen=frozen
    )
    item_errors: list[str] = []
    if data is not None and not adding and form.is_valid() and formset.is_valid():
        new_terms = terms_from_forms(form, formset, currency_errors=item_errors)
        if not item_errors:
            try:
                version = services.order_propose_changes(
                    order=order, actor=request.user, terms=new_terms, note=form.cleaned_data["note"]
                )
            except DomainError as error:
                _apply_errors(error, form, item_errors)
            else:
                messages.success(
                    request,
                    f"Version {version.number} proposed. The other party has been asked to "
                    "accept or decline it.",
                )
                return redirect(order)
    return render(
        request,
        "orders/propose.html",
        {
            "order": order,
            "form": form,
            "formset": formset,
            "item_errors": item_errors,
            "frozen": frozen,
            "totals": _live_totals(request.POST) if request.method == "POST" else None,
        },
        status=400 if request.method == "POST" and not adding else 200,
    )
