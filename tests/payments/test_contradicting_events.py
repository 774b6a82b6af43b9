"""Provider events that contradict one already applied (paid after failed, failed after paid,
a capture of a charge reported failed, …): a staff alert, the money held, never paid twice,
never stored as "ignored"."""

from decimal import Decimal

import pytest

from payments import selectors, services
from payments.models import (
    Account,
    Escrow,
    LedgerTransaction,
    Payment,
    Payout,
    ProviderEvent,
    Refund,
)
from payments.providers.sandbox import event_body
from tests.payments.factories import EscrowFactory, pay_by_card, payment_started
from tests.payments.test_webhooks import post_event
from tradeassure.core.errors import Conflict
from tradeassure.platform.models import SystemAlert

pytestmark = pytest.mark.django_db
USD = "USD"


def held(**account) -> Decimal:
    found = Account.objects.filter(kind=Account.Kind.HELD_FOR_REVIEW, **account).first()
    return found.current_balance if found else Decimal("0.00")


def balance_of(escrow):
    return selectors.supplier_balances(organisation=escrow.supplier_organisation)[0]


def alerts() -> list[str]:
    return list(SystemAlert.objects.values_list("message", flat=True))


@pytest.fixture
def released(run_after_commit):
    """A supplier with 96.00 payable (100.00 released)."""
    escrow = EscrowFactory()
    run_after_commit(pay_by_card, escrow, Decimal("100.00"))
    services.escrow_release(
        escrow_reference=escrow.reference, amount=Decimal("100.00"), idempotency_key="rel"
    )
    return escrow


def request_payout(escrow, key: str, amount=Decimal("96.00")) -> Payout:
    return services.payout_request(
        organisation=escrow.supplier_organisation, currency=USD, amount=amount, idempotency_key=key
    )


def paid(payout, **kwargs):
    return event_body(
        "payout.paid", payout.provider_reference, amount=payout.amount, currency=USD, **kwargs
    )


def test_payout_paid_after_failed_is_held_and_never_paid_twice(client, released):
    # given a payout reported failed (its money went back to the payable balance), and the
    # supplier paid that money out again with a second payout
    first = request_payout(released, "po-1")
    post_event(client, event_body("payout.failed", first.provider_reference, reason="Closed."))
    second = request_payout(released, "po-2")
    post_event(client, paid(second))

    # when the provider's real "paid" for the first payout arrives
    response = post_event(client, paid(first))

    # then it is not ignored: the event is held, the payout is under review, staff are alerted,
    # and the amount is held (owed by the supplier, as its balance was already paid out)
    assert response.status_code == 200 and response.json()["status"] == "held"
    first.refresh_from_db()
    assert first.status == Payout.Status.NEEDS_REVIEW
    event = ProviderEvent.objects.get(type="payout.paid", object_reference=first.provider_reference)
    assert event.status == ProviderEvent.Status.HELD
    assert any(first.provider_reference in alert and "disagree" in alert for alert in alerts())
    org = released.supplier_organisation_id
    assert held(organisation_id=org) == Decimal("96.00")
    balance = balance_of(released)
    assert (balance.available, balance.owed) == (Decimal("0.00"), Decimal("96.00"))
    assert selectors.ledger_verify().ok

    # and once staff confirm the supplier was paid, the held money is settled as paid out; the
    # double payment stays owed by the supplier (taken from its next release)
    services.payout_review_settle(payout_id=first.pk, paid=True, actor=None)
    first.refresh_from_db()
    assert first.status == Payout.Status.PAID
    assert held(organisation_id=org) == Decimal("0.00")
    assert balance_of(released).owed == Decimal("96.00")
    assert selectors.ledger_verify().ok


def test_payout_paid_after_failed_takes_the_money_out_of_the_payable_balance(client, released):
    # given a payout reported failed, its money back in the balance
    payout = request_payout(released, "po-1")
    post_event(client, event_body("payout.failed", payout.provider_reference, reason="Closed."))
    assert balance_of(released).available == Decimal("96.00")

    # when the provider then reports it paid
    post_event(client, paid(payout))

    # then the balance can no longer be paid out a second time
    assert balance_of(released).available == Decimal("0.00")
    with pytest.raises(Conflict) as refused:
        request_payout(released, "po-again")
    assert refused.value.code == "insufficient_funds"
    assert Payout.objects.count() == 1

    # and if staff find it was not paid after all, the balance gets it back
    services.payout_review_settle(payout_id=payout.pk, paid=False, actor=None)
    assert balance_of(released).available == Decimal("96.00")
    assert Payout.objects.get(pk=payout.pk).status == Payout.Status.FAILED
    assert selectors.ledger_verify().ok


def test_payout_failed_after_paid_holds_the_money_instead_of_the_balance(client, released):
    # given a payout reported paid
    payout = request_payout(released, "po-1")
    post_event(client, paid(payout))

    # when the provider then reports it failed
    response = post_event(
        client, event_body("payout.failed", payout.provider_reference, reason="Returned.")
    )

    # then the money is held for review, not made payable again, and staff are alerted
    assert response.json()["status"] == "held"
    assert Payout.objects.get(pk=payout.pk).status == Payout.Status.NEEDS_REVIEW
    assert balance_of(released).available == Decimal("0.00")
    assert held(organisation_id=released.supplier_organisation_id) == Decimal("96.00")
    assert any("now failed" in alert for alert in alerts())
    assert selectors.ledger_verify().ok

    # and a later event for it is held and alerted too, moving nothing
    count = LedgerTransaction.objects.count()
    assert post_event(client, paid(payout)).json()["status"] == "held"
    assert LedgerTransaction.objects.count() == count

    # staff: it did fail, so the supplier may request it again
    services.payout_review_settle(payout_id=payout.pk, paid=False, actor=None)
    assert balance_of(released).available == Decimal("96.00")
    with pytest.raises(Conflict) as again:
        services.payout_review_settle(payout_id=payout.pk, paid=False, actor=None)
    assert again.value.code == "not_under_review"
    assert selectors.ledger_verify().ok


@pytest.fixture
def refund(run_after_commit, django_capture_on_commit_callbacks):
    escrow = EscrowFactory()
    run_after_commit(pay_by_card, escrow, Decimal("200.00"))
    with django_capture_on_commit_callbacks(execute=False):
        services.escrow_refund(
            escrow_reference=escrow.reference,
            amount=Decimal("200.00"),
            idempotency_key="r",
            reason="",
        )
    return Refund.objects.get()


def test_refund_failed_after_completed_is_held_and_alerted(client, refund):
    # given a refund the provider reported completed (the buyer was paid)
    completed = event_body(
        "refund.completed", refund.provider_reference, amount=refund.amount, currency=USD
    )
    post_event(client, completed)

    # when it then reports the refund failed
    response = post_event(
        client, event_body("refund.failed", refund.provider_reference, reason="Card closed.")
    )

    # then the money that came back is held for review, the refund is under review, alerted
    assert response.json()["status"] == "held"
    assert Refund.objects.get(pk=refund.pk).status == Refund.Status.NEEDS_REVIEW
    assert held(escrow=refund.escrow) == Decimal("200.00")
    assert any(refund.provider_reference in alert for alert in alerts())
    assert selectors.ledger_verify().ok


def test_refund_completed_after_failed_is_held_not_ignored(client, refund):
    # given a refund the provider reported failed (still owed to the buyer)
    post_event(client, event_body("refund.failed", refund.provider_reference, reason="Closed."))
    transactions = LedgerTransaction.objects.count()

    # when it then reports the refund completed
    response = post_event(
        client,
        event_body(
            "refund.completed", refund.provider_reference, amount=refund.amount, currency=USD
        ),
    )

    # then the event is held with an alert, the refund under review, and nothing moved (the
    # money stays in refunds in transit, where no payout can take it)
    assert response.json()["status"] == "held"
    assert Refund.objects.get(pk=refund.pk).status == Refund.Status.NEEDS_REVIEW
    assert LedgerTransaction.objects.count() == transactions
    assert any("now completed" in alert for alert in alerts())
    assert selectors.escrow_summary(
        escrow_reference=refund.escrow.reference
    ).refunds_in_transit == (Decimal("200.00"))
    assert selectors.ledger_verify().ok


def test_a_refund_event_for_an_unknown_refund_alerts_staff(client):
    response = post_event(
        client,
        event_body("refund.completed", "ta_rf_unknown", amount=Decimal("5.00"), currency=USD),
    )
    assert response.json()["status"] == "unmatched"
    assert any("ta_rf_unknown" in alert for alert in alerts())
    assert not LedgerTransaction.objects.exists()


def test_a_capture_of_a_charge_reported_failed_is_held_not_applied(client):
    # given a payment whose charge ch_X the provider reported failed
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("75.00"))
    post_event(
        client,
        event_body("payment.failed", payment.provider_reference, reason="No.", charge_id="ch_X"),
    )

    # when it then reports the same charge captured (twice)
    capture = dict(amount=Decimal("75.00"), currency=USD, charge_id="ch_X")
    first = post_event(
        client, event_body("payment.captured", payment.provider_reference, **capture)
    )
    again = post_event(
        client, event_body("payment.captured", payment.provider_reference, **capture)
    )

    # then the money is held once for review, nothing reaches the escrow, staff are alerted
    assert (first.json()["status"], again.json()["status"]) == ("held", "ignored")
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.FAILED
    assert held(escrow=escrow) == Decimal("75.00")
    assert selectors.escrow_summary(escrow_reference=escrow.reference).held == Decimal("0.00")
    assert any("ch_X" in alert for alert in alerts())
    assert selectors.ledger_verify().ok


def test_a_failure_of_a_captured_charge_puts_the_escrow_on_hold(client):
    # given a payment captured with charge ch_Y
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("75.00"))
    capture = dict(amount=Decimal("75.00"), currency=USD, charge_id="ch_Y")
    post_event(client, event_body("payment.captured", payment.provider_reference, **capture))

    # when the provider reports that very charge failed
    response = post_event(
        client,
        event_body(
            "payment.failed", payment.provider_reference, reason="Reversed.", charge_id="ch_Y"
        ),
    )

    # then the event is held with an alert, and no money can leave the escrow
    assert response.json()["status"] == "held"
    assert Escrow.objects.get(pk=escrow.pk).on_hold
    assert any("ch_Y" in alert for alert in alerts())
    for move in (services.escrow_release, services.escrow_refund):
        kwargs = {"reason": "x"} if move is services.escrow_refund else {}
        with pytest.raises(Conflict) as refused:
            move(
                escrow_reference=escrow.reference,
                amount=Decimal("75.00"),
                idempotency_key=f"{move.__name__}-1",
                **kwargs,
            )
        assert refused.value.code == "escrow_on_hold"
    assert selectors.escrow_summary(escrow_reference=escrow.reference).held == Decimal("75.00")

    # and once staff lift the hold, the money moves again
    services.escrow_hold_lift(escrow_reference=escrow.reference, actor=None)
    services.escrow_release(
        escrow_reference=escrow.reference, amount=Decimal("75.00"), idempotency_key="rel-2"
    )
    assert selectors.ledger_verify().ok


def test_a_late_decline_of_an_earlier_attempt_is_still_just_stale(client):
    # given a payment captured by charge ch_2 after an earlier attempt (ch_1) was declined
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("75.00"))
    capture = dict(amount=Decimal("75.00"), currency=USD, charge_id="ch_2")
    post_event(client, event_body("payment.captured", payment.provider_reference, **capture))

    # when the decline of ch_1 arrives late
    response = post_event(
        client,
        event_body("payment.failed", payment.provider_reference, reason="No.", charge_id="ch_1"),
    )

    # then it is stale (no contradiction: another charge), nothing held, no alert
    assert response.json()["status"] == "ignored"
    assert not Escrow.objects.get(pk=escrow.pk).on_hold
    assert alerts() == []
