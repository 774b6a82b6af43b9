"""The whole protected order with PAYMENT_PROVIDER=stripe against localstripe, webhooks
delivered by localstripe itself: pay, pay the balance, ship, receive, dispute, a mediator's
partial refund through the Refunds API, a manual supplier payout; then `ledger_check` and
`payments_reconcile` are clean."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from disputes import services as disputes_services
from disputes.models import Remedy
from orders import services as orders_services
from orders.models import Order, OrderStatus
from payments import selectors, services
from payments.models import Payment, Payout, Refund
from tests.disputes.factories import Parties, under_review
from tests.factories import MediatorFactory
from tests.orders.factories import place_order, ship, supplier_user_of
from tests.payments.stripe.conftest import browser_confirms, wait_until
from tradeassure.core import clock

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
S = OrderStatus


def _pay(order: Order, expect: str) -> Payment:
    """The buyer presses Pay, Stripe.js confirms the card, Stripe's webhook moves the order."""
    payment = orders_services.order_payment_start(order=order, actor=order.buyer, method="card")
    assert browser_confirms(payment) == "succeeded"
    wait_until(
        lambda: Order.objects.get(pk=order.pk).status == expect, what=f"order {expect} by webhook"
    )
    payment.refresh_from_db()
    return payment


def test_the_whole_protected_order_flow_with_stripe(stripe_on, real_webhooks, stripe_client):
    started = clock.now()
    # given a confirmed order (USD 1,400.00: initial 400.00, balance 1,000.00)
    order = place_order()
    supplier_user = supplier_user_of(order)
    order = orders_services.order_confirm(order=order, actor=supplier_user)

    # when the buyer pays the initial payment and, when asked, the balance by card
    initial = _pay(order, S.IN_PRODUCTION)
    order = orders_services.order_request_balance(order=order, actor=supplier_user)
    balance = _pay(order, S.READY_TO_SHIP)
    # the supplier ships, the buyer confirms receipt, then disputes the quality
    order = ship(Order.objects.get(pk=order.pk))
    order = orders_services.order_confirm_receipt(order=order, actor=order.buyer)
    assert order.status == S.DELIVERED
    mediator = MediatorFactory()
    dispute = under_review(
        Parties(order=order, buyer=order.buyer, supplier_user=supplier_user), mediator
    )
    # and the mediator decides a partial refund of 300.00
    disputes_services.dispute_decide(
        dispute=dispute,
        actor=mediator,
        terms=disputes_services.OutcomeTerms(
            remedy=Remedy.PARTIAL_REFUND, refund_amount=Decimal("300.00")
        ),
        reason="12 of 100 speakers cracked in the drop test.",
    )

    # then the refund went through Stripe's Refunds API and completed from its answer
    refund = wait_until(
        lambda: Refund.objects.filter(status=Refund.Status.COMPLETED).first(),
        what="the refund to complete",
    )
    assert (refund.provider, refund.amount) == ("stripe", Decimal("300.00"))
    at_stripe = [
        r.to_dict()
        for r in stripe_client.v1.refunds.list({"limit": 100}).auto_paging_iter()
        if r.to_dict()["metadata"].get("ta_reference") == refund.provider_reference
    ]
    assert [(r["amount"], r["status"]) for r in at_stripe] == [(30000, "succeeded")]
    assert at_stripe[0]["payment_intent"] == initial.provider_reference
    order.refresh_from_db()
    assert order.status == S.COMPLETED
    money = selectors.escrow_summary(escrow_reference=order.escrow_reference)
    assert (money.captured, money.refunded, money.released, money.held) == (
        Decimal("1400.00"),
        Decimal("300.00"),
        Decimal("1100.00"),
        Decimal("0.00"),
    )
    assert {initial.status, balance.status} == {Payment.Status.CAPTURED}

    # and the supplier is paid out by bank transfer, recorded by staff with the bank reference
    organisation = supplier_user.organisation
    (usd,) = selectors.supplier_balances(organisation=organisation)
    payout = services.payout_request(
        organisation=organisation,
        currency="USD",
        amount=usd.available,
        idempotency_key="flow-payout",
        requested_by=supplier_user,
    )
    assert payout.provider == "manual"
    assert Payout.objects.get(pk=payout.pk).status == Payout.Status.REQUESTED
    services.payout_manual_settle(
        payout_id=payout.pk, bank_reference="HSBC FT2611300042", actor=MediatorFactory()
    )
    assert Payout.objects.get(pk=payout.pk).status == Payout.Status.PAID

    # and at the end the ledger and the reconciliation with Stripe are clean
    out = StringIO()
    call_command("ledger_check", stdout=out)
    assert "OK" in out.getvalue()
    out = StringIO()
    call_command(
        "payments_reconcile",
        since=started.isoformat(),
        until=clock.now().isoformat(),
        stdout=out,
        stderr=out,
    )
    assert "2 payment(s), 1 refund(s) checked" in out.getvalue()
    assert "OK: the provider and the ledger agree." in out.getvalue()
