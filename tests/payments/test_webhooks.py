import json
from decimal import Decimal

import pytest
from django.urls import reverse

from payments import selectors, services
from payments.models import LedgerTransaction, Payment, Payout, ProviderEvent, Refund
from payments.providers.sandbox import SIGNATURE_HEADER, event_body, sign
from tests.payments.factories import EscrowFactory, pay_by_card, payment_started

pytestmark = pytest.mark.django_db

URL = "/payments/webhooks/sandbox/"


def post_event(client, event: dict, *, signature: str | None = None):
    body = json.dumps(event).encode()
    return client.post(
        URL,
        data=body,
        content_type="application/json",
        headers={SIGNATURE_HEADER: signature if signature is not None else sign(body)},
    )


def money_state() -> tuple:
    return (
        LedgerTransaction.objects.count(),
        ProviderEvent.objects.count(),
        list(Payment.objects.values_list("status", flat=True)),
    )


def test_url_name_resolves():
    assert reverse("payments:webhook", args=["sandbox"]) == URL


def test_captured_event_replayed_ten_times_applies_once(client):
    # given a pending card payment
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("120.00"))
    event = event_body(
        "payment.captured",
        payment.provider_reference,
        amount=Decimal("120.00"),
        currency="USD",
        charge_id="ch_1",
    )
    # when the provider delivers the same event ten times
    responses = [post_event(client, event) for _ in range(10)]
    # then every delivery gets 200, the first applies, the rest are duplicates
    assert [r.status_code for r in responses] == [200] * 10
    assert [r.json()["duplicate"] for r in responses] == [False] + [True] * 9
    assert ProviderEvent.objects.count() == 1
    assert LedgerTransaction.objects.filter(kind="capture").count() == 1
    assert selectors.escrow_summary(escrow_reference=escrow.reference).held == Decimal("120.00")
    assert selectors.ledger_verify().ok


def test_same_charge_in_a_new_event_is_not_applied_twice(client):
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("50.00"))
    for _ in range(3):  # the provider re-sends the same charge under fresh event ids
        post_event(
            client,
            event_body(
                "payment.captured",
                payment.provider_reference,
                amount=Decimal("50.00"),
                currency="USD",
                charge_id="ch_same",
            ),
        )
    assert ProviderEvent.objects.count() == 3
    assert ProviderEvent.objects.filter(status="ignored").count() == 2
    assert selectors.escrow_summary(escrow_reference=escrow.reference).captured == Decimal("50.00")


def test_failed_then_captured_in_reverse_order_ends_captured(client):
    # given a payment whose card was first declined, then charged on retry
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("75.00"))
    failed = event_body("payment.failed", payment.provider_reference, reason="Declined.")
    captured = event_body(
        "payment.captured",
        payment.provider_reference,
        amount=Decimal("75.00"),
        currency="USD",
        charge_id="ch_2",
    )
    # when the events arrive in reverse order, each ten times
    for event in [captured, failed] * 10:
        assert post_event(client, event).status_code == 200
    # then the payment is captured once and the late "failed" changed nothing
    payment.refresh_from_db()
    assert payment.status == Payment.Status.CAPTURED
    assert ProviderEvent.objects.count() == 2
    assert ProviderEvent.objects.get(type="payment.failed").status == "ignored"
    assert selectors.escrow_summary(escrow_reference=escrow.reference).held == Decimal("75.00")


def test_refund_events_in_reverse_order_apply_once(client, django_capture_on_commit_callbacks):
    # given a refund the provider has not answered yet
    escrow = EscrowFactory()
    with django_capture_on_commit_callbacks(execute=True):
        pay_by_card(escrow, Decimal("200.00"))
    with django_capture_on_commit_callbacks(execute=False):
        services.escrow_refund(
            escrow_reference=escrow.reference,
            amount=Decimal("200.00"),
            idempotency_key="r",
            reason="",
        )
    refund = Refund.objects.get()
    created = event_body("refund.created", refund.provider_reference)
    completed = event_body(
        "refund.completed", refund.provider_reference, amount=Decimal("200.00"), currency="USD"
    )
    # when "completed" arrives before "created", and both are replayed
    for event in [completed, created] * 10:
        assert post_event(client, event).status_code == 200
    # then the refund completed once, and the stale "created" did not move it back
    refund.refresh_from_db()
    assert refund.status == Refund.Status.COMPLETED
    assert LedgerTransaction.objects.filter(kind="refund_completed").count() == 1
    assert ProviderEvent.objects.get(type="refund.created").status == "ignored"
    assert selectors.ledger_verify().ok


def test_payout_failure_returns_money_to_payable(client, run_after_commit):
    escrow = EscrowFactory()
    run_after_commit(pay_by_card, escrow, Decimal("100.00"))
    services.escrow_release(
        escrow_reference=escrow.reference, amount=Decimal("100.00"), idempotency_key="rel"
    )
    payout = services.payout_request(
        organisation=escrow.supplier_organisation,
        currency="USD",
        amount=Decimal("96.00"),
        idempotency_key="po",
    )
    failed = event_body("payout.failed", payout.provider_reference, reason="Account closed.")
    for _ in range(3):
        post_event(client, failed)
    # (a "paid" after this contradicts it: tests/payments/test_contradicting_events.py)
    payout.refresh_from_db()
    assert payout.status == Payout.Status.FAILED
    balance = selectors.supplier_balances(organisation=escrow.supplier_organisation)[0]
    assert (balance.available, balance.in_transit) == (Decimal("96.00"), Decimal("0.00"))
    assert selectors.ledger_verify().ok


@pytest.mark.parametrize(
    "signature",
    ["", "t=1,v1=deadbeef", "garbage", "t=notanumber,v1=00"],
)
def test_bad_signature_is_400_and_stores_nothing(client, signature):
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("10.00"))
    event = event_body(
        "payment.captured", payment.provider_reference, amount=Decimal("10.00"), currency="USD"
    )
    before = money_state()
    response = post_event(client, event, signature=signature)
    assert response.status_code == 400
    assert money_state() == before


def test_signature_with_wrong_secret_is_rejected(client):
    body = json.dumps(event_body("refund.created", "ta_rf_x")).encode()
    response = client.post(
        URL,
        data=body,
        content_type="application/json",
        headers={SIGNATURE_HEADER: sign(body, secret="not-the-secret")},
    )
    assert response.status_code == 400
    assert not ProviderEvent.objects.exists()


def test_old_signature_is_rejected(client):
    body = json.dumps(event_body("refund.created", "ta_rf_x")).encode()
    response = client.post(
        URL,
        data=body,
        content_type="application/json",
        headers={SIGNATURE_HEADER: sign(body, timestamp=1_000_000)},
    )
    assert response.status_code == 400
    assert not ProviderEvent.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"{}",
        b'{"id": "e1", "type": "payment.exploded", "data": {"reference": "x"}}',
        b'{"id": "e1", "type": "payment.captured", "data": {"reference": "x", "amount": "NaN"}}',
        b'{"id": "e1", "type": "payment.captured", "data": {"reference": "x", "amount": "-1"}}',
    ],
)
def test_malformed_body_is_400(client, body):
    response = client.post(
        URL, data=body, content_type="application/json", headers={SIGNATURE_HEADER: sign(body)}
    )
    assert response.status_code == 400
    assert not ProviderEvent.objects.exists()


def test_get_is_not_allowed_and_unknown_provider_is_404(client):
    assert client.get(URL).status_code == 405
    body = b"{}"
    response = client.post("/payments/webhooks/nope/", data=body, content_type="application/json")
    assert response.status_code == 404


def test_event_for_unknown_object_is_stored_unmatched(client):
    response = post_event(
        client,
        event_body("payment.captured", "sbx_pay_unknown", amount=Decimal("1.00"), currency="USD"),
    )
    assert response.status_code == 200
    assert ProviderEvent.objects.get().status == "unmatched"
    assert not LedgerTransaction.objects.exists()


def test_webhook_endpoint_is_csrf_exempt():
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    response = post_event(client, event_body("refund.created", "ta_rf_unknown"))
    assert response.status_code == 200


def test_hook_refusal_is_409_stores_nothing_and_the_retry_applies(client, settings):
    # given a capture hook that raises
    settings.PAYMENT_CAPTURED_HOOKS = ["tests.payments.hooks.refuse"]
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("30.00"))
    event = event_body(
        "payment.captured",
        payment.provider_reference,
        amount=Decimal("30.00"),
        currency="USD",
        charge_id="ch_retry",
    )
    before = money_state()
    # when the provider delivers the capture, then it is refused and nothing is kept
    assert post_event(client, event).status_code == 409
    assert money_state() == before
    # and when the provider retries after the hook is fixed, it applies once
    settings.PAYMENT_CAPTURED_HOOKS = []
    assert post_event(client, event).json()["duplicate"] is False
    assert selectors.escrow_summary(escrow_reference=escrow.reference).held == Decimal("30.00")
