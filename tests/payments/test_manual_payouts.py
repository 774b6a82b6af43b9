"""The `manual` payout adapter: staff pay suppliers by bank transfer and record the reference."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from payments import services
from payments.models import LedgerTransaction, Payout, ProviderEvent
from payments.selectors import ledger_verify, supplier_balances
from tests.factories import MediatorFactory, StaffFactory
from tests.payments.factories import EscrowFactory, pay_by_card
from tradeassure.core.errors import Conflict, ValidationFailed

pytestmark = pytest.mark.django_db


@pytest.fixture
def waiting_payout(settings, run_after_commit) -> Payout:
    """A supplier paid 500.00 (net 484.00) asks for a payout; suppliers are paid manually."""
    settings.PAYOUT_PROVIDER = "manual"
    escrow = EscrowFactory(currency="USD")
    run_after_commit(pay_by_card, escrow, Decimal("500.00"))
    run_after_commit(
        services.escrow_release,
        escrow_reference=escrow.reference,
        amount=Decimal("500.00"),
        idempotency_key="release-all",
    )
    return run_after_commit(
        services.payout_request,
        organisation=escrow.supplier_organisation,
        currency="USD",
        amount=Decimal("484.00"),
        idempotency_key="payout-1",
    )


def _finance_staff():
    user = StaffFactory(role="mediator")
    user.user_permissions.add(
        Permission.objects.get(codename="change_payout"),
        Permission.objects.get(codename="view_payout"),
    )
    return user


def test_a_manual_payout_waits_for_staff_and_is_not_paid_by_itself(waiting_payout):
    # given a payout request with the manual adapter (its provider call already ran)
    payout = Payout.objects.get(pk=waiting_payout.pk)
    # then it waits: requested, in transit in the ledger, nothing paid
    assert (payout.provider, payout.status) == ("manual", Payout.Status.REQUESTED)
    (usd,) = supplier_balances(organisation=payout.organisation)
    assert (usd.available, usd.in_transit) == (Decimal("0.00"), Decimal("484.00"))
    assert not LedgerTransaction.objects.filter(kind="payout_completed").exists()
    # and the resend sweep does not ask anyone to pay it
    assert services.provider_requests_resend_stuck(older_than_seconds=-3600) == 0


def test_nothing_is_marked_paid_without_a_bank_reference(waiting_payout):
    # given a waiting manual payout
    before = LedgerTransaction.objects.count()
    # when staff try to settle it with no (or a blank) reference
    for reference in ("", "   ", "ab"):
        with pytest.raises(ValidationFailed) as refused:
            services.payout_manual_settle(
                payout_id=waiting_payout.pk, bank_reference=reference, actor=MediatorFactory()
            )
        assert refused.value.code == "bank_reference_required"
    # then nothing changed
    assert Payout.objects.get(pk=waiting_payout.pk).status == Payout.Status.REQUESTED
    assert LedgerTransaction.objects.count() == before
    assert not ProviderEvent.objects.filter(provider="manual").exists()


def test_recording_the_bank_reference_settles_the_payout_once(waiting_payout):
    # given a waiting manual payout
    staff = _finance_staff()
    # when staff record the bank's reference (and someone tries again)
    services.payout_manual_settle(
        payout_id=waiting_payout.pk, bank_reference="  FT26113 000421 ", actor=staff
    )
    with pytest.raises(Conflict):
        services.payout_manual_settle(
            payout_id=waiting_payout.pk, bank_reference="FT-OTHER", actor=staff
        )
    # then it is paid once, in the ledger, with the reference and who recorded it
    payout = Payout.objects.get(pk=waiting_payout.pk)
    assert payout.status == Payout.Status.PAID and payout.completed_at is not None
    event = ProviderEvent.objects.get(provider="manual")
    assert event.payload["bank_reference"] == "FT26113 000421"
    assert event.payload["recorded_by"] == staff.pk
    assert LedgerTransaction.objects.filter(kind="payout_completed").count() == 1
    (usd,) = supplier_balances(organisation=payout.organisation)
    assert usd.in_transit == Decimal("0.00")
    assert ledger_verify().ok


def test_staff_record_the_transfer_in_the_admin(waiting_payout, client):
    # given finance staff in the admin, and a mediator who may only look
    url = reverse("admin:payments_payout_record_transfer", args=[waiting_payout.pk])
    client.force_login(MediatorFactory())
    assert client.get(url).status_code == 403
    client.force_login(_finance_staff())
    listing = client.get(reverse("admin:payments_payout_changelist")).content.decode()
    assert url in listing  # the waiting payout offers "Record bank transfer"

    # when they submit without a reference, then with one
    empty = client.post(url, {"bank_reference": ""})
    assert Payout.objects.get(pk=waiting_payout.pk).status == Payout.Status.REQUESTED
    done = client.post(url, {"bank_reference": "HSBC FT2611300042"})

    # then the first is refused on the form, the second settles the payout
    assert empty.status_code == 400
    assert done.status_code == 302
    assert Payout.objects.get(pk=waiting_payout.pk).status == Payout.Status.PAID
    detail = client.get(reverse("admin:payments_payout_change", args=[waiting_payout.pk]))
    assert "HSBC FT2611300042" in detail.content.decode()
