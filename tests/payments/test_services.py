from decimal import Decimal

import pytest

from payments import selectors, services
from payments.models import (
    Account,
    Entry,
    Escrow,
    LedgerTransaction,
    Payment,
    Payout,
    Refund,
    UnappliedTransfer,
)
from tests.factories import OrganisationFactory
from tests.payments import hooks
from tests.payments.factories import (
    EscrowFactory,
    buyer_of,
    pay_by_card,
    payment_started,
)
from tradeassure.core.errors import Conflict, NotAllowed, NotFound, Unprocessable, ValidationFailed
from tradeassure.platform.models import DomainEvent

pytestmark = pytest.mark.django_db


def ledger_counts() -> tuple[int, int]:
    return LedgerTransaction.objects.count(), Entry.objects.count()


@pytest.fixture
def funded(run_after_commit):
    """An escrow holding USD 1,000.00 paid by card."""
    escrow = EscrowFactory(currency="USD")
    run_after_commit(pay_by_card, escrow, Decimal("1000.00"))
    return escrow


# --- escrow_open ---------------------------------------------------------------------------
def test_escrow_open_is_idempotent():
    # given an open escrow
    escrow = EscrowFactory(currency="EUR")
    # when orders opens it again with the same facts
    services.escrow_open(
        escrow_reference=escrow.reference,
        currency="EUR",
        buyer_organisation=escrow.buyer_organisation,
        supplier_organisation=escrow.supplier_organisation,
        description="again",
    )
    # then there is still one escrow with its three accounts
    assert Escrow.objects.filter(reference=escrow.reference).count() == 1
    assert Account.objects.filter(escrow=escrow).count() == 3


def test_escrow_open_with_other_currency_is_refused():
    escrow = EscrowFactory(currency="EUR")
    with pytest.raises(Conflict) as error:
        services.escrow_open(
            escrow_reference=escrow.reference,
            currency="USD",
            buyer_organisation=escrow.buyer_organisation,
            supplier_organisation=escrow.supplier_organisation,
            description="",
        )
    assert error.value.code == "escrow_mismatch"
    assert Escrow.objects.get(pk=escrow.pk).currency == "EUR"


def test_escrow_open_refuses_unsupported_currency():
    buyer, supplier = OrganisationFactory(), OrganisationFactory(kind="supplier")
    with pytest.raises(ValidationFailed):
        services.escrow_open(
            escrow_reference="order:1",
            currency="XYZ",
            buyer_organisation=buyer,
            supplier_organisation=supplier,
            description="",
        )
    assert not Escrow.objects.exists()


# --- payment_start -------------------------------------------------------------------------
def test_payment_start_replays_by_key_and_refuses_key_reuse():
    escrow = EscrowFactory()
    first = payment_started(escrow, Decimal("100.00"), key="pay-1")
    again = payment_started(escrow, Decimal("100.00"), key="pay-1")
    assert again.pk == first.pk
    with pytest.raises(Unprocessable) as error:
        payment_started(escrow, Decimal("99.00"), key="pay-1")
    assert error.value.code == "idempotency_key_reused"
    assert Payment.objects.count() == 1


def test_payment_in_another_currency_is_refused():
    escrow = EscrowFactory(currency="USD")
    with pytest.raises(Unprocessable) as error:
        services.payment_start(
            escrow_reference=escrow.reference,
            purpose="initial",
            amount=Decimal("10.00"),
            currency="EUR",
            method="card",
            payer_organisation=escrow.buyer_organisation,
            idempotency_key="k",
        )
    assert error.value.code == "currency_mismatch"
    assert not Payment.objects.exists()


def test_only_the_buyer_pays_into_the_escrow():
    escrow = EscrowFactory()
    with pytest.raises(NotAllowed):
        services.payment_start(
            escrow_reference=escrow.reference,
            purpose="initial",
            amount=Decimal("10.00"),
            currency="USD",
            method="card",
            payer_organisation=escrow.supplier_organisation,
            idempotency_key="k",
        )
    assert not Payment.objects.exists()


@pytest.mark.parametrize(
    ("amount", "purpose", "method", "return_url"),
    [
        (Decimal("0"), "initial", "card", ""),
        (Decimal("-5.00"), "initial", "card", ""),
        (Decimal("1.001"), "initial", "card", ""),
        (Decimal("10.00"), "tip", "card", ""),
        (Decimal("10.00"), "initial", "cash", ""),
        (Decimal("10.00"), "initial", "card", "https://evil.example/"),
    ],
)
def test_payment_start_rejects_bad_input(amount, purpose, method, return_url):
    escrow = EscrowFactory()
    with pytest.raises(ValidationFailed):
        services.payment_start(
            escrow_reference=escrow.reference,
            purpose=purpose,
            amount=amount,
            currency="USD",
            method=method,
            payer_organisation=escrow.buyer_organisation,
            idempotency_key="k",
            return_url=return_url,
        )
    assert not Payment.objects.exists()


def test_payment_for_unknown_escrow_is_not_found():
    with pytest.raises(NotFound):
        services.payment_start(
            escrow_reference="order:404",
            purpose="initial",
            amount=Decimal("10.00"),
            currency="USD",
            method="card",
            payer_organisation=OrganisationFactory(),
            idempotency_key="k",
        )


# --- capture --------------------------------------------------------------------------------
def test_card_capture_moves_money_into_escrow_and_calls_hooks(run_after_commit, settings):
    # given a capture hook registered the way orders registers its hook
    settings.PAYMENT_CAPTURED_HOOKS = ["tests.payments.hooks.record"]
    hooks.CALLS.clear()
    escrow = EscrowFactory()
    # when the buyer pays by card
    payment = run_after_commit(pay_by_card, escrow, Decimal("250.00"))
    # then the escrow holds it, the hook saw the captured payment, an event was published
    payment.refresh_from_db()
    assert payment.status == Payment.Status.CAPTURED
    assert [(payment.pk, "captured", Decimal("250.00"))] == hooks.CALLS
    assert selectors.escrow_summary(escrow_reference=escrow.reference).held == Decimal("250.00")
    assert DomainEvent.objects.filter(topic="payment.captured", subject_id=payment.pk).count() == 1


def test_declined_card_moves_nothing_and_can_be_retried(run_after_commit):
    escrow = EscrowFactory()
    payment = run_after_commit(pay_by_card, escrow, Decimal("250.00"), card="4000000000000002")
    payment.refresh_from_db()
    assert payment.status == Payment.Status.FAILED
    assert "declined" in payment.failure_reason
    assert ledger_counts() == (0, 0)
    # when the buyer retries with a good card
    run_after_commit(
        services.payment_card_submit,
        payment=payment,
        card_number="4242 4242 4242 4242",
        actor=buyer_of(escrow),
    )
    payment.refresh_from_db()
    assert payment.status == Payment.Status.CAPTURED
    assert selectors.escrow_summary(escrow_reference=escrow.reference).captured == Decimal("250.00")


def test_invalid_card_number_is_refused():
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("10.00"))
    with pytest.raises(ValidationFailed) as error:
        services.payment_card_submit(
            payment=payment, card_number="4242424242424241", actor=buyer_of(escrow)
        )
    assert error.value.code == "invalid_card"
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.PENDING


def test_hook_refunding_the_money_runs_in_the_capture_transaction(run_after_commit, settings):
    # given orders would refund money that arrives for a cancelled order
    settings.PAYMENT_CAPTURED_HOOKS = ["tests.payments.hooks.refund_everything"]
    escrow = EscrowFactory()
    # when the payment is captured
    run_after_commit(pay_by_card, escrow, Decimal("80.00"))
    # then it went straight back to the buyer and the ledger balances
    summary = selectors.escrow_summary(escrow_reference=escrow.reference)
    assert (summary.captured, summary.refunded, summary.held) == (
        Decimal("80.00"),
        Decimal("80.00"),
        Decimal("0.00"),
    )
    assert Refund.objects.get().status == Refund.Status.COMPLETED
    assert selectors.ledger_verify().ok


def test_bank_transfer_stays_pending_until_it_arrives(run_after_commit):
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("500.00"), method="bank_transfer")
    assert services.payment_instructions(payment=payment)["Reference"] == escrow.bank_reference
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.PENDING
    run_after_commit(
        services.payment_transfer_simulate,
        payment=payment,
        amount=Decimal("500.00"),
        currency="USD",
        actor=buyer_of(escrow),
    )
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.CAPTURED
    assert selectors.escrow_summary(escrow_reference=escrow.reference).held == Decimal("500.00")


@pytest.mark.parametrize(
    ("amount", "currency"), [(Decimal("499.00"), "USD"), (Decimal("500.00"), "EUR")]
)
def test_wrong_bank_transfer_is_held_and_returned_never_applied(run_after_commit, amount, currency):
    # given a bank transfer payment of USD 500.00
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("500.00"), method="bank_transfer")
    # when a transfer of the wrong amount or currency arrives
    run_after_commit(
        services.payment_transfer_simulate,
        payment=payment,
        amount=amount,
        currency=currency,
        actor=buyer_of(escrow),
    )
    # then nothing reaches the escrow, the payment stays pending, the money goes back
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.PENDING
    assert selectors.escrow_summary(escrow_reference=escrow.reference).captured == Decimal("0.00")
    transfer = UnappliedTransfer.objects.get()
    assert (transfer.amount, transfer.currency) == (amount, currency)
    assert transfer.refund.status == Refund.Status.COMPLETED
    assert Account.objects.get(key=f"unapplied_funds:{currency}").balance == 0
    assert selectors.ledger_verify().ok


def test_second_transfer_for_a_paid_payment_is_returned(run_after_commit):
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("500.00"), method="bank_transfer")
    for _ in range(2):
        run_after_commit(
            services.payment_transfer_simulate,
            payment=payment,
            amount=Decimal("500.00"),
            currency="USD",
            actor=buyer_of(escrow),
        )
    assert selectors.escrow_summary(escrow_reference=escrow.reference).captured == Decimal("500.00")
    assert UnappliedTransfer.objects.get().reason == "The payment had already been made."
    assert selectors.ledger_verify().ok


# --- release and refund ---------------------------------------------------------------------
def test_release_pays_supplier_minus_fee(funded, run_after_commit):
    run_after_commit(
        services.escrow_release,
        escrow_reference=funded.reference,
        amount=Decimal("1000.00"),
        idempotency_key="rel",
    )
    summary = selectors.escrow_summary(escrow_reference=funded.reference)
    assert (summary.held, summary.released, summary.fees, summary.supplier_net) == (
        Decimal("0.00"),
        Decimal("1000.00"),
        Decimal("31.00"),
        Decimal("969.00"),
    )
    assert selectors.account_balance(key="platform_fees:USD") == Decimal("31.00")


def test_release_replay_moves_nothing(funded):
    services.escrow_release(
        escrow_reference=funded.reference, amount=Decimal("300.00"), idempotency_key="rel-1"
    )
    before = ledger_counts()
    services.escrow_release(
        escrow_reference=funded.reference, amount=Decimal("300.00"), idempotency_key="rel-1"
    )
    assert ledger_counts() == before
    assert selectors.escrow_summary(escrow_reference=funded.reference).held == Decimal("700.00")


def test_same_key_for_another_operation_is_refused(funded):
    services.escrow_release(
        escrow_reference=funded.reference, amount=Decimal("300.00"), idempotency_key="k-1"
    )
    before = ledger_counts()
    with pytest.raises(Unprocessable):
        services.escrow_refund(
            escrow_reference=funded.reference,
            amount=Decimal("300.00"),
            idempotency_key="k-1",
            reason="",
        )
    with pytest.raises(Unprocessable):
        services.escrow_release(
            escrow_reference=funded.reference, amount=Decimal("200.00"), idempotency_key="k-1"
        )
    assert ledger_counts() == before


@pytest.mark.parametrize("operation", ["release", "refund"])
def test_moving_more_than_held_is_refused_and_changes_nothing(funded, operation):
    before = ledger_counts()
    with pytest.raises(Conflict) as error:
        if operation == "release":
            services.escrow_release(
                escrow_reference=funded.reference, amount=Decimal("1000.01"), idempotency_key="x"
            )
        else:
            services.escrow_refund(
                escrow_reference=funded.reference,
                amount=Decimal("1000.01"),
                idempotency_key="x",
                reason="",
            )
    assert error.value.code == "insufficient_escrow"
    assert ledger_counts() == before
    assert not Refund.objects.exists()
    assert selectors.escrow_summary(escrow_reference=funded.reference).held == Decimal("1000.00")


def test_frozen_escrow_refuses_release_and_refund_until_unfrozen(funded):
    services.escrow_freeze(escrow_reference=funded.reference)
    before = ledger_counts()
    for call in (
        lambda: services.escrow_release(
            escrow_reference=funded.reference, amount=Decimal("1.00"), idempotency_key="a"
        ),
        lambda: services.escrow_refund(
            escrow_reference=funded.reference,
            amount=Decimal("1.00"),
            idempotency_key="b",
            reason="",
        ),
    ):
        with pytest.raises(Conflict) as error:
            call()
        assert error.value.code == "escrow_frozen"
    assert ledger_counts() == before
    assert selectors.escrow_summary(escrow_reference=funded.reference).frozen is True
    # when the dispute outcome unfreezes and refunds in one transaction
    services.escrow_unfreeze(escrow_reference=funded.reference)
    services.escrow_refund(
        escrow_reference=funded.reference, amount=Decimal("1000.00"), idempotency_key="b", reason=""
    )
    assert selectors.escrow_summary(escrow_reference=funded.reference).held == Decimal("0.00")


def test_refund_completes_asynchronously(funded, django_capture_on_commit_callbacks):
    # when a refund is requested, before the provider answers
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.escrow_refund(
            escrow_reference=funded.reference,
            amount=Decimal("100.00"),
            idempotency_key="r",
            reason="late shipment",
        )
    refund = Refund.objects.get()
    assert refund.status == Refund.Status.REQUESTED
    in_transit = Account.objects.get(key=f"refunds_in_transit:{funded.reference}")
    assert in_transit.balance == Decimal("100.00")
    # then after commit the provider reports created and completed
    with django_capture_on_commit_callbacks(execute=True):
        for callback in callbacks:
            callback()
    refund.refresh_from_db()
    in_transit.refresh_from_db()
    assert refund.status == Refund.Status.COMPLETED
    assert in_transit.balance == Decimal("0.00")


def test_unknown_escrow_is_not_found():
    with pytest.raises(NotFound):
        services.escrow_release(
            escrow_reference="order:0", amount=Decimal("1"), idempotency_key="k"
        )
    summary = selectors.escrow_summary(escrow_reference="order:0")
    assert summary.exists is False and summary.held == 0


# --- inspection fee -------------------------------------------------------------------------
def test_inspection_fee_pays_the_inspector_when_supplier_not_at_fault(funded, run_after_commit):
    run_after_commit(pay_by_card, funded, Decimal("300.00"), purpose="inspection_fee")
    assert selectors.escrow_summary(escrow_reference=funded.reference).inspection_fee_held == (
        Decimal("300.00")
    )
    services.inspection_fee_settle(
        escrow_reference=funded.reference, supplier_at_fault=False, idempotency_key="insp"
    )
    services.inspection_fee_settle(
        escrow_reference=funded.reference, supplier_at_fault=False, idempotency_key="insp"
    )
    assert selectors.account_balance(key="inspection_fees_earned:USD") == Decimal("300.00")
    summary = selectors.escrow_summary(escrow_reference=funded.reference)
    assert (summary.inspection_fee_held, summary.held) == (Decimal("0.00"), Decimal("1000.00"))
    assert not Refund.objects.exists()


def test_inspection_fee_charged_to_supplier_at_fault_then_taken_from_next_release(
    funded, run_after_commit
):
    # given a 300.00 inspection fee held and a supplier with no payable balance
    run_after_commit(pay_by_card, funded, Decimal("300.00"), purpose="inspection_fee")
    # when the supplier is found at fault
    run_after_commit(
        services.inspection_fee_settle,
        escrow_reference=funded.reference,
        supplier_at_fault=True,
        idempotency_key="insp",
    )
    # then the buyer gets the fee back and the supplier owes it
    refund = Refund.objects.get(kind=Refund.Kind.INSPECTION_FEE)
    assert (refund.amount, refund.status) == (Decimal("300.00"), Refund.Status.COMPLETED)
    balance = selectors.supplier_balances(organisation=funded.supplier_organisation)[0]
    assert (balance.available, balance.owed) == (Decimal("0.00"), Decimal("300.00"))
    # and the next release settles the debt first: 1000 - 31 fee - 300 owed = 669
    services.escrow_release(
        escrow_reference=funded.reference, amount=Decimal("1000.00"), idempotency_key="rel"
    )
    balance = selectors.supplier_balances(organisation=funded.supplier_organisation)[0]
    assert (balance.available, balance.owed) == (Decimal("669.00"), Decimal("0.00"))
    assert selectors.ledger_verify().ok


def test_inspection_fee_settle_without_fee_is_refused(funded):
    before = ledger_counts()
    with pytest.raises(Conflict):
        services.inspection_fee_settle(
            escrow_reference=funded.reference, supplier_at_fault=True, idempotency_key="i"
        )
    assert ledger_counts() == before


# --- payouts --------------------------------------------------------------------------------
def test_payout_moves_payable_out_and_completes(funded, run_after_commit):
    services.escrow_release(
        escrow_reference=funded.reference, amount=Decimal("1000.00"), idempotency_key="rel"
    )
    org = funded.supplier_organisation
    payout = run_after_commit(
        services.payout_request,
        organisation=org,
        currency="USD",
        amount=Decimal("900.00"),
        idempotency_key="po-1",
    )
    again = services.payout_request(
        organisation=org, currency="USD", amount=Decimal("900.00"), idempotency_key="po-1"
    )
    assert again.pk == payout.pk
    payout.refresh_from_db()
    assert payout.status == Payout.Status.PAID
    balance = selectors.supplier_balances(organisation=org)[0]
    assert (balance.available, balance.in_transit) == (Decimal("69.00"), Decimal("0.00"))
    assert selectors.ledger_verify().ok


def test_payout_of_more_than_available_is_refused(funded):
    services.escrow_release(
        escrow_reference=funded.reference, amount=Decimal("100.00"), idempotency_key="rel"
    )
    before = ledger_counts()
    with pytest.raises(Conflict) as error:
        services.payout_request(
            organisation=funded.supplier_organisation,
            currency="USD",
            amount=Decimal("96.01"),  # 100 released - 4.00 fee = 96.00 available
            idempotency_key="po",
        )
    assert error.value.code == "insufficient_funds"
    assert ledger_counts() == before
    assert not Payout.objects.exists()
