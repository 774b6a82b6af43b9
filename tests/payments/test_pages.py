from decimal import Decimal

import pytest
from django.urls import reverse

from payments import services
from payments.models import LedgerTransaction, Payment, Payout
from tests.factories import BuyerFactory, MediatorFactory, SupplierStaffFactory
from tests.payments.factories import (
    EscrowFactory,
    buyer_of,
    pay_by_card,
    payment_started,
    supplier_staff_of,
)

pytestmark = pytest.mark.django_db


# --- the payment page --------------------------------------------------------------------------
def test_payer_sees_card_form_breakdown_and_return_link(client):
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("1234.50"))
    client.force_login(buyer_of(escrow))
    response = client.get(payment.get_absolute_url())
    assert response.status_code == 200
    body = response.content.decode()
    assert "Pay by card" in body
    assert "USD 1,234.50" in body
    assert 'href="/orders/1/"' in body
    assert reverse("payments:payment_status", args=[payment.public_id]) in body  # htmx polling


def test_bank_transfer_page_shows_reference(client):
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("10.00"), method="bank_transfer")
    client.force_login(buyer_of(escrow))
    body = client.get(payment.get_absolute_url()).content.decode()
    assert escrow.bank_reference in body
    assert "Simulate the transfer arriving" in body


@pytest.mark.parametrize(
    "outsider",
    ["other_buyer", "supplier_of_order", "mediator"],
)
def test_payment_page_is_404_for_everyone_but_the_payer(client, outsider):
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("10.00"))
    user = {
        "other_buyer": BuyerFactory,
        "supplier_of_order": lambda: supplier_staff_of(escrow),
        "mediator": MediatorFactory,
    }[outsider]()
    client.force_login(user)
    for url in (
        payment.get_absolute_url(),
        reverse("payments:payment_status", args=[payment.public_id]),
    ):
        assert client.get(url).status_code == 404
    response = client.post(
        reverse("payments:payment_card", args=[payment.public_id]),
        {"card_number": "4242424242424242", "expiry": "12/30", "cvc": "123"},
    )
    assert response.status_code == 404
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.PENDING
    assert not LedgerTransaction.objects.exists()


def test_anonymous_is_sent_to_login(client):
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("10.00"))
    response = client.get(payment.get_absolute_url())
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_paying_by_card_through_the_page(client, django_capture_on_commit_callbacks):
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("99.99"))
    client.force_login(buyer_of(escrow))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("payments:payment_card", args=[payment.public_id]),
            {"card_number": "4242 4242 4242 4242", "expiry": "12/30", "cvc": "123"},
        )
    assert response.status_code == 302
    payment.refresh_from_db()
    assert payment.status == Payment.Status.CAPTURED
    status = client.get(reverse("payments:payment_status", args=[payment.public_id]))
    assert "Paid" in status.content.decode()
    assert "hx-trigger" not in status.content.decode()  # polling stops once paid


@pytest.mark.parametrize(
    "data",
    [
        {"card_number": "4242424242424241", "expiry": "12/30", "cvc": "123"},
        {"card_number": "abcd", "expiry": "12/30", "cvc": "123"},
        {"card_number": "4242424242424242", "expiry": "13/30", "cvc": "123"},
        {"card_number": "4242424242424242", "expiry": "12/30", "cvc": "1"},
        {},
    ],
)
def test_bad_card_input_is_a_form_error_and_changes_nothing(
    client, django_capture_on_commit_callbacks, data
):
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("10.00"))
    client.force_login(buyer_of(escrow))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("payments:payment_card", args=[payment.public_id]), data)
    assert response.status_code == 400
    assert 'class="errorlist"' in response.content.decode()
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.PENDING
    assert not LedgerTransaction.objects.exists()


def test_wrong_transfer_through_the_page_is_listed_as_returned(
    client, django_capture_on_commit_callbacks
):
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("10.00"), method="bank_transfer")
    client.force_login(buyer_of(escrow))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("payments:payment_transfer", args=[payment.public_id]),
            {"amount": "9.00", "currency": "USD"},
        )
    body = client.get(payment.get_absolute_url()).content.decode()
    assert "Transfers being returned" in body
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.PENDING


def test_bad_transfer_input_is_400(client):
    escrow = EscrowFactory(currency="JPY")
    payment = payment_started(escrow, Decimal("1000"), method="bank_transfer")
    client.force_login(buyer_of(escrow))
    for data in ({"amount": "10.5", "currency": "JPY"}, {"amount": "-1", "currency": "JPY"}, {}):
        response = client.post(reverse("payments:payment_transfer", args=[payment.public_id]), data)
        assert response.status_code == 400
    assert not LedgerTransaction.objects.exists()


# --- the supplier's Money page ----------------------------------------------------------------
def released_escrow(supplier_org, run_after_commit, amount=Decimal("500.00")):
    escrow = EscrowFactory(supplier_organisation=supplier_org)
    run_after_commit(pay_by_card, escrow, amount)
    services.escrow_release(
        escrow_reference=escrow.reference, amount=amount, idempotency_key=f"rel-{escrow.pk}"
    )
    return escrow


def test_money_page_shows_balance_statement_and_payouts(client, run_after_commit):
    supplier = SupplierStaffFactory()
    escrow = released_escrow(supplier.organisation, run_after_commit)
    client.force_login(supplier)
    response = client.get(reverse("payments:money"))
    assert response.status_code == 200
    body = response.content.decode()
    assert escrow.reference in body
    assert "USD 484.00" in body  # 500 - (15 + 1) fee
    assert "USD 16.00" in body
    assert "Request payout" in body


@pytest.mark.parametrize("factory", [BuyerFactory, MediatorFactory])
def test_money_page_is_for_supplier_staff_only(client, factory):
    client.force_login(factory())
    assert client.get(reverse("payments:money")).status_code == 404
    response = client.post(
        reverse("payments:payout_request"),
        {"currency": "USD", "amount": "1.00", "idempotency_key": "x"},
    )
    assert response.status_code == 404
    assert not Payout.objects.exists()


def test_money_page_shows_only_own_organisation(client, run_after_commit):
    mine, theirs = SupplierStaffFactory(), SupplierStaffFactory()
    other = released_escrow(theirs.organisation, run_after_commit)
    client.force_login(mine)
    body = client.get(reverse("payments:money")).content.decode()
    assert other.reference not in body
    assert "No money has been released to you yet." in body


def test_payout_form_is_idempotent(client, run_after_commit):
    supplier = SupplierStaffFactory()
    released_escrow(supplier.organisation, run_after_commit)
    client.force_login(supplier)
    data = {"currency": "USD", "amount": "100.00", "idempotency_key": "form-1"}
    for _ in range(3):
        response = client.post(reverse("payments:payout_request"), data)
        assert response.status_code == 302
    assert Payout.objects.count() == 1


def test_payout_of_too_much_shows_error_and_changes_nothing(client, run_after_commit):
    supplier = SupplierStaffFactory()
    released_escrow(supplier.organisation, run_after_commit)
    client.force_login(supplier)
    response = client.post(
        reverse("payments:payout_request"),
        {"currency": "USD", "amount": "485.01", "idempotency_key": "form-2"},
        follow=True,
    )
    assert "Payout not requested" in response.content.decode()
    assert not Payout.objects.exists()


def test_money_page_query_count_is_constant(
    client, run_after_commit, django_assert_max_num_queries
):
    supplier = SupplierStaffFactory()
    client.force_login(supplier)
    for _ in range(2):
        released_escrow(supplier.organisation, run_after_commit, Decimal("10.00"))
    services.payout_request(
        organisation=supplier.organisation,
        currency="USD",
        amount=Decimal("1.00"),
        idempotency_key="p-1",
    )
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small:
        assert client.get(reverse("payments:money")).status_code == 200
    for index in range(10):
        released_escrow(supplier.organisation, run_after_commit, Decimal("10.00"))
        services.payout_request(
            organisation=supplier.organisation,
            currency="USD",
            amount=Decimal("1.00"),
            idempotency_key=f"p-more-{index}",
        )
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(reverse("payments:money"))
    assert response.content.decode().count("Test order") >= 12
