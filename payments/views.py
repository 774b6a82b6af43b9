"""Browser pages for money: the buyer's payment page, the supplier's Money page, and the
provider webhook endpoint. Views only call services and selectors."""

import logging
from typing import cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from accounts.team import REFUSALS, Capability, team_allows
from payments import selectors, services
from payments.error_codes import PaymentErrorCode
from payments.forms import CardForm, PayoutForm, TransferSimulateForm
from payments.models import Payment
from tradeassure.core.errors import DomainError, NotFound, ValidationFailed
from tradeassure.core.money import format_money

logger = logging.getLogger(__name__)


def _payment_or_404(request, public_id) -> Payment:
    payment = selectors.payment_for_member(public_id=public_id, user=request.user)
    if payment is None:
        raise Http404("No such payment.")
    if not team_allows(request.user, Capability.PAY):
        # A member of the paying organisation without the role: a plain refusal, not a 404.
        raise PermissionDenied(REFUSALS[Capability.PAY])
    return payment


# What the Stripe card form needs, and nothing more (Stripe's documented CSP for Stripe.js):
# its script, its iframes (card field, 3-D Secure) and its API. Sent only on this page.
STRIPE_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'", "https://js.stripe.com", "https://*.js.stripe.com"],
    "frame-src": ["https://js.stripe.com", "https://*.js.stripe.com", "https://hooks.stripe.com"],
    "connect-src": ["'self'", "https://api.stripe.com"],
    "img-src": ["'self'", "data:"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}


def _with_stripe_csp(response):
    """The Stripe page's Content-Security-Policy (a per-view policy; with django-csp installed
    site-wide this becomes @csp_update on the view)."""
    response["Content-Security-Policy"] = "; ".join(
        f"{directive} {' '.join(sources)}" for directive, sources in STRIPE_CSP.items()
    )
    return response


def _stripe_context(payment: Payment) -> dict | None:
    """The publishable key and the intent's client secret, only when Stripe takes this card."""
    if payment.provider != "stripe" or payment.method != Payment.Method.CARD:
        return None
    if payment.status == Payment.Status.CAPTURED:
        return None
    from django.conf import settings

    from payments.providers import provider_get
    from payments.providers.base import BrowserCardProvider
    from payments.providers.stripe import STRIPE_JS_URL

    try:
        secret = cast(BrowserCardProvider, provider_get("stripe")).client_secret(payment=payment)
    except DomainError as error:
        return {"error": error.message}
    return {
        "publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
        "client_secret": secret,
        "js_url": STRIPE_JS_URL,
    }


def _payment_page(request, payment: Payment, *, card_form=None, transfer_form=None, status=200):
    sandbox = payment.provider == "sandbox"
    stripe_context = _stripe_context(payment)
    context = {
        "payment": payment,
        "summary": selectors.escrow_summary(escrow_reference=payment.escrow.reference),
        "instructions": services.payment_instructions(payment=payment),
        "unapplied": selectors.payment_unapplied_transfers(payment=payment),
        "card_form": card_form or CardForm.fresh(),
        "transfer_form": transfer_form
        or TransferSimulateForm(initial={"amount": payment.amount, "currency": payment.currency}),
        "sandbox": sandbox,
        "stripe": stripe_context,
    }
    response = render(request, "payments/payment_detail.html", context, status=status)
    return _with_stripe_csp(response) if stripe_context else response


@login_required
@require_GET
def payment_detail(request, public_id):
    return _payment_page(request, _payment_or_404(request, public_id))


@login_required
@require_GET
def payment_status(request, public_id):
    """The live status block the payment page polls (htmx) until the payment is captured."""
    payment = _payment_or_404(request, public_id)
    summary = selectors.escrow_summary(escrow_reference=payment.escrow.reference)
    return render(
        request, "payments/_payment_status.html", {"payment": payment, "summary": summary}
    )


def _already_paid(request, payment: Payment):
    """A second tab (or the back button) submitting a payment that is already made: say so and
    go back where the buyer came from, instead of a bare error."""
    messages.info(
        request,
        f"This {payment.get_purpose_display().lower()} was already paid "
        f"({format_money(payment.amount, payment.currency)}). Nothing more was charged.",
    )
    return redirect(payment.return_url or payment.get_absolute_url())


# A submission that lost the race to another one is not an error the buyer made: the page
# says what is happening instead (no form error, no 400).
_CARD_ALREADY_TAKEN = {
    PaymentErrorCode.PAYMENT_ALREADY_SUBMITTED: "Your card is already being processed for this "
    "payment; the status below updates by itself. You were not charged twice.",
    PaymentErrorCode.ALREADY_PAID: "This payment has already been made; you were not charged "
    "again.",
}


@login_required
@require_POST
def payment_card(request, public_id):
    payment = _payment_or_404(request, public_id)
    if payment.status == Payment.Status.CAPTURED:
        return _already_paid(request, payment)
    form = CardForm(request.POST)
    if form.is_valid():
        attempt = form.cleaned_data["attempt"]
        try:
            services.payment_card_submit(
                payment=payment,
                card_number=form.cleaned_data["card_number"],
                actor=request.user,
                # Per user, so one buyer's form key never matches a colleague's attempt.
                attempt=f"page:{request.user.pk}:{attempt}" if attempt else "",
            )
        except DomainError as error:
            if error.code in _CARD_ALREADY_TAKEN:
                messages.info(request, _CARD_ALREADY_TAKEN[error.code])
                return redirect(payment.get_absolute_url())
            form.add_error(
                "card_number" if error.code == PaymentErrorCode.INVALID_CARD else None,
                error.message,
            )
        else:
            # The same for a replay of this form (a double click): one attempt, one charge.
            messages.success(request, "Card submitted. The status below updates by itself.")
            return redirect(payment.get_absolute_url())
    return _payment_page(request, payment, card_form=form, status=400)


@login_required
@require_POST
def payment_transfer_simulate_view(request, public_id):
    payment = _payment_or_404(request, public_id)
    form = TransferSimulateForm(request.POST)
    if form.is_valid():
        try:
            services.payment_transfer_simulate(
                payment=payment,
                amount=form.cleaned_data["amount"],
                currency=form.cleaned_data["currency"],
                actor=request.user,
            )
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, "Sandbox: the bank transfer is on its way.")
            return redirect(payment.get_absolute_url())
    return _payment_page(request, payment, transfer_form=form, status=400)


def _supplier_organisation(request):
    user = request.user
    if not user.is_supplier_staff or user.organisation_id is None:
        raise Http404("Only supplier staff have a Money page.")
    if not team_allows(user, Capability.SEE_MONEY):
        raise PermissionDenied(REFUSALS[Capability.SEE_MONEY])
    return user.organisation


@login_required
@require_GET
def supplier_money(request):
    organisation = _supplier_organisation(request)
    balances = selectors.supplier_balances(organisation=organisation)
    escrow_page = Paginator(selectors.escrows_for_supplier(organisation=organisation), 20).get_page(
        request.GET.get("page")
    )
    statement = selectors.supplier_statement(
        organisation=organisation,
        escrows=selectors.escrows_for_supplier(organisation=organisation).filter(
            pk__in=[escrow.pk for escrow in escrow_page]
        ),
    )
    payouts = selectors.payouts_for_organisation(organisation=organisation)[:50]
    return render(
        request,
        "payments/money.html",
        {
            "balances": [(balance, PayoutForm.for_balance(balance)) for balance in balances],
            "statement": statement,
            "statement_totals": selectors.supplier_statement_totals(organisation=organisation),
            "activity": selectors.supplier_activity(organisation=organisation),
            "page": escrow_page,
            "payouts": payouts,
        },
    )


@login_required
@require_POST
def supplier_payout_request(request):
    organisation = _supplier_organisation(request)
    form = PayoutForm(request.POST)
    if not form.is_valid():
        errors = "; ".join(f"{field}: {' '.join(errs)}" for field, errs in form.errors.items())
        messages.error(request, f"Payout not requested. {errors}")
        return redirect("payments:money")
    try:
        payout = services.payout_request(
            organisation=organisation,
            currency=form.cleaned_data["currency"],
            amount=form.cleaned_data["amount"],
            idempotency_key=form.cleaned_data["idempotency_key"],
            requested_by=request.user,
        )
    except DomainError as error:
        messages.error(request, f"Payout not requested. {error.message}")
    else:
        messages.success(
            request, f"Payout of {payout.currency} {payout.amount} requested; it arrives shortly."
        )
    return redirect("payments:money")


@csrf_exempt
@require_POST
def provider_webhook(request, provider: str):
    """Provider callbacks: 400 on a bad signature or body, 200 (also for duplicates)."""
    try:
        event, applied_now = services.provider_webhook_receive(
            provider=provider, body=request.body, headers=request.headers
        )
    except ValidationFailed as error:
        return JsonResponse({"code": error.code, "detail": error.message}, status=400)
    except NotFound as error:
        return JsonResponse({"code": error.code, "detail": error.message}, status=404)
    except DomainError as error:
        # A capture hook refused: nothing was stored, so the provider's retry applies it later.
        logger.error("Webhook %s not applied: %s (%s)", provider, error.message, error.code)
        return JsonResponse({"code": error.code, "detail": error.message}, status=409)
    return JsonResponse(
        {"event_id": event.event_id, "status": event.status, "duplicate": not applied_now}
    )
