"""One charge per payment: card submissions racing through the API and the page (PostgreSQL,
real threads), replays of one attempt, and a second card refused while the first is processed."""

import re
import threading
import uuid
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from payments import selectors, services
from payments.models import LedgerTransaction, Payment, UnappliedTransfer
from payments.providers.sandbox import SandboxProvider
from tests.payments.factories import EscrowFactory, buyer_of, payment_started
from tradeassure.core.errors import Conflict
from tradeassure.platform.models import DomainEvent

GOOD_CARD = "4242 4242 4242 4242"


@pytest.fixture
def charges(monkeypatch) -> list[str]:
    """Every card the sandbox provider is asked to charge (one entry per hand-over)."""
    handed_over: list[str] = []
    lock = threading.Lock()
    original = SandboxProvider.confirm_card

    def counting(self, *, payment, card_number):
        with lock:
            handed_over.append(payment.card_attempt)
        return original(self, payment=payment, card_number=card_number)

    monkeypatch.setattr(SandboxProvider, "confirm_card", counting)
    return handed_over


@pytest.fixture
def held_events(monkeypatch) -> list[dict]:
    """The sandbox's webhooks kept back (the provider is slow to answer); deliver them later."""
    kept: list[dict] = []
    monkeypatch.setattr(
        SandboxProvider, "_send", lambda self, event, countdown=0: kept.append(event)
    )
    return kept


def deliver(events: list[dict]) -> None:
    from payments.tasks import sandbox_deliver_event

    for event in events:
        sandbox_deliver_event(event)


def run_in_threads(count: int, work) -> list:
    """Run work(index) in `count` threads released together; each result or the error text."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = work(index)
        except Exception as error:  # kept, so the assertions show it
            results[index] = f"error:{type(error).__name__}:{error}"
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def assert_charged_once(payment: Payment) -> None:
    payment.refresh_from_db()
    assert payment.status == Payment.Status.CAPTURED
    assert LedgerTransaction.objects.filter(escrow=payment.escrow, kind="capture").count() == 1
    assert not UnappliedTransfer.objects.filter(payment=payment).exists()
    assert DomainEvent.objects.filter(topic="payment.captured", subject_id=payment.pk).count() == 1
    summary = selectors.escrow_summary(escrow_reference=payment.escrow.reference)
    assert (summary.captured, summary.held) == (payment.amount, payment.amount)
    assert selectors.ledger_verify().ok


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_sixteen_concurrent_api_card_submissions_charge_the_card_once(charges):
    # given a pending card payment and 16 API clients of its buyer, each with its own key
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("480.00"))
    buyer = buyer_of(escrow)
    url = f"/api/v1/payments/{payment.public_id}/sandbox-card/"

    def submit(index: int):
        client = APIClient()
        client.force_authenticate(buyer)
        response = client.post(
            url, {"card_number": GOOD_CARD}, format="json", HTTP_IDEMPOTENCY_KEY=f"card-{index}"
        )
        body = response.json()
        return response.status_code, body.get("code") or body.get("status")

    # when all 16 submit the card at once
    results = run_in_threads(16, submit)

    # then exactly one was accepted; every other one got a defined refusal (no 500, no other
    # error), the provider was asked to charge once, and the money was captured once
    assert Counter(status for status, _ in results) == {202: 1, 409: 15}, results
    assert {code for status, code in results if status == 409} <= {
        "payment_already_submitted",
        "already_paid",
    }, results
    assert len(charges) == 1
    assert_charged_once(payment)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_identical_page_posts_of_the_card_form_charge_once(charges):
    # given the buyer's payment page with its card form (one session, one CSRF token)
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("75.00"))
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(buyer_of(escrow))
    page = browser.get(payment.get_absolute_url()).content.decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    attempt = re.search(r'name="attempt" value="([^"]+)"', page).group(1)
    form = {
        "csrfmiddlewaretoken": csrf,
        "card_number": GOOD_CARD,
        "expiry": "12/30",
        "cvc": "123",
        "attempt": attempt,
    }
    cookies = {name: morsel.value for name, morsel in browser.cookies.items()}

    def double_click(index: int):
        tab = Client(enforce_csrf_checks=True)
        for name, value in cookies.items():
            tab.cookies[name] = value
        response = tab.post(f"/payments/{payment.public_id}/card/", form)
        return response.status_code, response.get("Location", "")

    # when the form is posted 10 times at once, identically (a double click)
    results = run_in_threads(10, double_click)

    # then every post went back to the payment page, and the card was charged once
    assert results == [(302, payment.get_absolute_url())] * 10, results
    assert len(charges) == 1
    assert_charged_once(payment)
    # and the page says it is paid, with no error
    body = browser.get(payment.get_absolute_url()).content.decode()
    assert "Thank you" in body and 'class="error"' not in body


@pytest.mark.django_db
def test_a_second_card_while_the_first_is_processed_is_refused_and_a_replay_is_not(
    charges, held_events, django_capture_on_commit_callbacks
):
    # given a card submitted through the API whose outcome the provider has not sent yet
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("60.00"))
    client = APIClient()
    client.force_authenticate(buyer_of(escrow))
    url = f"/api/v1/payments/{payment.public_id}/sandbox-card/"
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(
            url, {"card_number": GOOD_CARD}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
        )
    assert first.status_code == 202 and first.json()["status"] == "submitted"
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.SUBMITTED

    # when the same request is replayed, and another card is submitted under a new key
    replay = client.post(url, {"card_number": GOOD_CARD}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    other = client.post(
        url, {"card_number": "5555 5555 5555 4444"}, format="json", HTTP_IDEMPOTENCY_KEY="k2"
    )

    # then the replay has the same 202 and attempt; the other card is a 409 problem naming the
    # reason; the provider was asked once
    assert replay.status_code == 202 and replay.json() == first.json()
    assert other.status_code == 409
    assert other["Content-Type"] == "application/problem+json"
    assert other.json()["code"] == "payment_already_submitted"
    assert len(charges) == 1

    # and once the provider's answer arrives the payment is paid once; a later card is
    # refused as already paid
    deliver(held_events)
    assert_charged_once(payment)
    late = client.post(url, {"card_number": GOOD_CARD}, format="json", HTTP_IDEMPOTENCY_KEY="k3")
    assert late.status_code == 409 and late.json()["code"] == "already_paid"
    assert len(charges) == 1


@pytest.mark.django_db
def test_the_service_replays_one_attempt_and_takes_a_new_card_after_a_decline(
    charges, held_events, run_after_commit
):
    # given a card submission with an attempt key, declined by the provider
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("60.00"))
    buyer = buyer_of(escrow)
    first = run_after_commit(
        services.payment_card_submit,
        payment=payment,
        card_number="4000000000000002",
        actor=buyer,
        attempt="a1",
    )
    again = services.payment_card_submit(
        payment=payment, card_number="4000000000000002", actor=buyer, attempt="a1"
    )
    assert (first.replayed, again.replayed) == (False, True)
    with pytest.raises(Conflict) as refused:
        services.payment_card_submit(payment=payment, card_number=GOOD_CARD, actor=buyer)
    assert refused.value.code == "payment_already_submitted"
    deliver(held_events)
    held_events.clear()
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.FAILED

    # when the buyer tries another card
    run_after_commit(
        services.payment_card_submit,
        payment=payment,
        card_number=GOOD_CARD,
        actor=buyer,
        attempt="a2",
    )
    deliver(held_events)

    # then two attempts reached the provider (the declined one and the new one), one charge
    assert charges == ["a1", "a2"]
    assert_charged_once(payment)


@pytest.mark.django_db
def test_the_page_says_a_card_is_already_processing_instead_of_an_error(client, held_events):
    # given a card already submitted from one tab
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("60.00"))
    client.force_login(buyer_of(escrow))
    form = {"card_number": GOOD_CARD, "expiry": "12/30", "cvc": "123"}
    client.post(f"/payments/{payment.public_id}/card/", {**form, "attempt": str(uuid.uuid4())})

    # when another tab submits its own form
    response = client.post(
        f"/payments/{payment.public_id}/card/", {**form, "attempt": str(uuid.uuid4())}, follow=True
    )

    # then the page explains, with no form error, and shows the card being processed
    body = response.content.decode()
    assert response.redirect_chain == [(payment.get_absolute_url(), 302)]
    assert "already being processed" in body and "not charged twice" in body
    assert 'class="error"' not in body and 'class="errorlist"' not in body
    assert "Processing your card" in body
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.SUBMITTED
    assert LedgerTransaction.objects.count() == 0


@pytest.mark.django_db
def test_a_card_the_provider_cannot_take_is_released_for_another_try(
    monkeypatch, django_capture_on_commit_callbacks
):
    # given the provider's queue is down when the card is handed over
    def down(self, event, countdown=0):
        raise ConnectionError("broker down")

    monkeypatch.setattr(SandboxProvider, "_send", down)
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("60.00"))

    # when the buyer submits a card
    with django_capture_on_commit_callbacks(execute=True):
        services.payment_card_submit(payment=payment, card_number=GOOD_CARD, actor=buyer_of(escrow))

    # then nothing was charged and the payment takes another card, saying why
    payment.refresh_from_db()
    assert payment.status == Payment.Status.FAILED
    assert "nothing was charged" in payment.failure_reason
    assert LedgerTransaction.objects.count() == 0
