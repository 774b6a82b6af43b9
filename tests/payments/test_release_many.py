"""The set-based release (`escrows_release_many`, what the post-delivery sweep posts with): the
same legs as `escrow_release` one escrow at a time, the same refusals (each leaves its escrow
exactly as it was while the others in the batch are released), exactly once per key, and a
constant number of statements however many escrows the batch holds."""

from collections.abc import Callable
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from payments import selectors, services
from payments.error_codes import PaymentErrorCode
from payments.models import Account, Entry, Escrow, LedgerTransaction
from payments.services import EscrowRelease, escrows_release_many
from tests.factories import OrganisationFactory
from tests.payments.factories import EscrowFactory, escrow_cache_shift, pay_by_card
from tradeassure.core.errors import DomainError
from tradeassure.core.money import release_fee
from tradeassure.platform.error_codes import PlatformErrorCode
from tradeassure.platform.models import DomainEvent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

THOUSAND = Decimal("1000.00")


def _funded(run_after_commit, amount: Decimal = THOUSAND, **kwargs) -> Escrow:
    escrow = EscrowFactory(currency="USD", **kwargs)
    run_after_commit(pay_by_card, escrow, amount)
    return escrow


def _key(escrow: Escrow) -> str:
    return f"{escrow.reference}:release:completion"


@transaction.atomic
def _release_all(*escrows: Escrow) -> dict:
    return escrows_release_many(
        releases=[
            EscrowRelease(escrow_reference=e.reference, idempotency_key=_key(e)) for e in escrows
        ]
    )


def _one_by_one(escrow: Escrow) -> None:
    """The per-order path (`orders._engine.order_release_all`): what is held, by escrow_release."""
    held = selectors.escrow_held(escrow_reference=escrow.reference)
    if held > 0:
        services.escrow_release(
            escrow_reference=escrow.reference, amount=held, idempotency_key=_key(escrow)
        )


def _money(escrow: Escrow) -> tuple:
    """Everything a release of this escrow could change."""
    return (
        Escrow.objects.filter(pk=escrow.pk).values_list("frozen", "on_hold").get(),
        sorted(Account.objects.filter(escrow=escrow).values_list("key", "balance")),
        sorted(
            LedgerTransaction.objects.filter(escrow=escrow).values_list("idempotency_key", "kind")
        ),
        DomainEvent.objects.filter(subject_type="escrow", subject_id=escrow.pk).count(),
        selectors.supplier_balances(organisation=escrow.supplier_organisation),
    )


def _legs(escrow: Escrow) -> list[tuple[str, Decimal]]:
    """The release's entries, by account kind (the keys differ from escrow to escrow)."""
    return sorted(
        Entry.objects.filter(transaction__escrow=escrow, transaction__kind="release").values_list(
            "account__kind", "amount"
        )
    )


def test_a_batch_posts_what_the_per_escrow_release_posts(run_after_commit):
    # given two funded escrows of one supplier and one of another
    supplier = OrganisationFactory(kind="supplier", country="CN")
    slow = _funded(run_after_commit)
    fast = _funded(run_after_commit, supplier_organisation=supplier)
    other = _funded(run_after_commit, Decimal("250.00"), supplier_organisation=supplier)
    # when one is released by escrow_release and the others by one batch
    _one_by_one(slow)
    outcome = _release_all(fast, other)
    # then the batch says what it released, with the same legs and the same event
    assert outcome == {fast.reference: THOUSAND, other.reference: Decimal("250.00")}
    assert _legs(fast) == _legs(slow)
    assert dict(_legs(fast))["platform_fees"] == Decimal("31.00")

    def released_event(escrow):
        event = DomainEvent.objects.get(
            subject_type="escrow", subject_id=escrow.pk, topic="escrow.released"
        )
        return {k: v for k, v in event.payload.items() if k != "escrow_reference"}

    assert released_event(fast) == released_event(slow)
    memo = LedgerTransaction.objects.get(escrow=fast, kind="release").memo
    assert memo == LedgerTransaction.objects.get(escrow=slow, kind="release").memo
    # and the supplier's payable has both nets, every escrow is empty, the ledger is clean
    balance = selectors.supplier_balances(organisation=supplier)[0]
    small = Decimal("250.00")
    assert balance.available == THOUSAND - Decimal("31.00") + small - release_fee(small, "USD")
    for escrow in (slow, fast, other):
        assert selectors.escrow_held(escrow_reference=escrow.reference) == 0
    assert selectors.ledger_verify().ok
    call_command("ledger_check")


def test_what_the_supplier_owes_is_settled_from_the_first_releases_of_the_batch(
    run_after_commit,
):
    # given a supplier that owes 1,100.00 (two inspection fees it was charged, at fault) and
    # has two escrows of 1,000.00 to release
    first = _funded(run_after_commit)
    second = _funded(run_after_commit, supplier_organisation=first.supplier_organisation)
    for index, escrow in enumerate((first, second)):
        fee = Decimal("800.00") if index == 0 else Decimal("300.00")
        run_after_commit(pay_by_card, escrow, fee, purpose="inspection_fee")
        run_after_commit(
            services.inspection_fee_settle,
            escrow_reference=escrow.reference,
            supplier_at_fault=True,
            idempotency_key=f"insp-{index}",
        )
    owed = selectors.supplier_balances(organisation=first.supplier_organisation)[0].owed
    assert owed == Decimal("1100.00")
    # when both are released in one batch
    _release_all(first, second)
    # then the first net (969.00) went to the debt, and 131.00 of the second: 1,938 - 1,100
    balance = selectors.supplier_balances(organisation=first.supplier_organisation)[0]
    assert (balance.available, balance.owed) == (Decimal("838.00"), Decimal("0.00"))
    assert dict(_legs(first)) == {
        "escrow": -THOUSAND,
        "platform_fees": Decimal("31.00"),
        "supplier_debt": Decimal("969.00"),
    }
    assert dict(_legs(second))["supplier_debt"] == Decimal("131.00")
    assert selectors.ledger_verify().ok


def test_a_batch_run_twice_releases_once(run_after_commit):
    # given two funded escrows released by a batch
    escrows = [_funded(run_after_commit) for _ in range(2)]
    _release_all(*escrows)
    before = [_money(escrow) for escrow in escrows]
    # when the same batch runs again (a second sweep, a retried task)
    outcome = _release_all(*escrows)
    # then nothing moved: nothing is held any more
    assert outcome == {escrow.reference: Decimal(0) for escrow in escrows}
    assert [_money(escrow) for escrow in escrows] == before
    assert selectors.ledger_verify().ok


def test_nothing_held_posts_nothing_and_the_others_are_released(run_after_commit):
    # given an escrow opened but never paid, beside two funded ones
    empty = EscrowFactory(currency="USD")
    funded = [_funded(run_after_commit) for _ in range(2)]
    before = _money(empty)
    # when the batch releases everything held
    outcome = _release_all(empty, *funded)
    # then the empty one released nothing and posted nothing (as order_release_all skips it)
    assert outcome[empty.reference] == Decimal(0)
    assert _money(empty) == before
    assert all(outcome[escrow.reference] == THOUSAND for escrow in funded)


def test_an_escrow_not_opened_yet_releases_nothing_and_an_asked_amount_is_not_found():
    # given no escrow for these references
    with transaction.atomic():
        outcome = escrows_release_many(
            releases=[
                EscrowRelease(escrow_reference="order:404", idempotency_key="k1"),
                EscrowRelease(
                    escrow_reference="order:405", idempotency_key="k2", amount=Decimal("1.00")
                ),
            ]
        )
    # then everything held is nothing, and an amount asked of no escrow is refused
    assert outcome["order:404"] == Decimal(0)
    refusal = outcome["order:405"]
    assert isinstance(refusal, DomainError)
    assert refusal.code == PaymentErrorCode.ESCROW_NOT_FOUND
    assert not LedgerTransaction.objects.filter(kind="release").exists()


def _on_hold(escrow: Escrow) -> None:
    Escrow.objects.filter(pk=escrow.pk).update(on_hold=True)


def _disputed(escrow: Escrow) -> None:
    services.escrow_freeze(escrow_reference=escrow.reference)


def _key_used_for_less(escrow: Escrow) -> None:
    # a release of part of the money under the key the whole release will use
    services.escrow_release(
        escrow_reference=escrow.reference, amount=Decimal("100.00"), idempotency_key=_key(escrow)
    )


def _key_used_for_a_refund(escrow: Escrow) -> None:
    services.escrow_refund(
        escrow_reference=escrow.reference,
        amount=Decimal("100.00"),
        idempotency_key=_key(escrow),
        reason="Damaged",
    )


def _cache_below_entries(escrow: Escrow) -> None:
    escrow_cache_shift(escrow, Decimal("-1.00"))


REFUSALS: dict[str, tuple[Callable[[Escrow], None], str]] = {
    "on hold for review": (_on_hold, PaymentErrorCode.ESCROW_ON_HOLD),
    "frozen by a dispute": (_disputed, PaymentErrorCode.ESCROW_FROZEN),
    "key already used for another amount": (
        _key_used_for_less,
        PlatformErrorCode.IDEMPOTENCY_KEY_REUSED,
    ),
    "key already used for a refund": (
        _key_used_for_a_refund,
        PlatformErrorCode.IDEMPOTENCY_KEY_REUSED,
    ),
    "cached balance below its entries": (
        _cache_below_entries,
        PaymentErrorCode.INSUFFICIENT_ESCROW,
    ),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_the_batch_refuses_what_the_per_escrow_release_refuses(case, run_after_commit):
    # given a funded escrow in a state a release must refuse, between two that may be released
    make, code = REFUSALS[case]
    first = _funded(run_after_commit)
    refused = _funded(run_after_commit)
    last = _funded(run_after_commit)
    run_after_commit(make, refused)
    before = _money(refused)
    # when the per-escrow path tries it, it is refused and changes nothing
    with pytest.raises(DomainError) as per_escrow:
        _one_by_one(refused)
    assert per_escrow.value.code == code
    assert _money(refused) == before
    # when the batch releases all three
    outcome = _release_all(first, refused, last)
    # then it refused that one with the same refusal and left it exactly as it was
    refusal = outcome[refused.reference]
    assert isinstance(refusal, DomainError) and refusal.code == code, refusal
    assert _money(refused) == before
    # and released the two others in full
    for escrow in (first, last):
        assert outcome[escrow.reference] == THOUSAND
        assert selectors.escrow_held(escrow_reference=escrow.reference) == 0
        assert LedgerTransaction.objects.filter(escrow=escrow, kind="release").count() == 1


def test_the_batch_also_refuses_an_escrow_whose_cache_exceeds_its_entries(run_after_commit):
    # given a funded escrow whose cached balance says more than its entries hold (the
    # per-escrow path would release the entries' sum and leave the cache wrong)
    refused, other = _funded(run_after_commit), _funded(run_after_commit)
    escrow_cache_shift(refused, Decimal("5.00"))
    before = _money(refused)
    # when the batch releases both
    outcome = _release_all(refused, other)
    # then the inconsistent one is refused, untouched, for staff to look at
    refusal = outcome[refused.reference]
    assert isinstance(refusal, DomainError) and refusal.code == PaymentErrorCode.ESCROW_MISMATCH
    assert _money(refused) == before
    assert outcome[other.reference] == THOUSAND


def test_an_explicit_amount_is_checked_like_escrow_release(run_after_commit):
    # given a funded escrow
    escrow = _funded(run_after_commit)
    before = _money(escrow)
    for amount, code in (
        (Decimal("0.00"), PaymentErrorCode.INVALID_AMOUNT),
        (Decimal("1.001"), PaymentErrorCode.INVALID_AMOUNT),
        (Decimal("1000.01"), PaymentErrorCode.INSUFFICIENT_ESCROW),
    ):
        # when the batch is asked for an amount escrow_release refuses
        with transaction.atomic():
            outcome = escrows_release_many(
                releases=[EscrowRelease(escrow.reference, _key(escrow), amount=amount)]
            )
        # then it is refused with the same code and nothing moved
        refusal = outcome[escrow.reference]
        assert isinstance(refusal, DomainError) and refusal.code == code, (amount, refusal)
        assert _money(escrow) == before
    # and a part of it is released, then replayed without moving anything
    for _ in range(2):
        with transaction.atomic():
            outcome = escrows_release_many(
                releases=[EscrowRelease(escrow.reference, "part", amount=Decimal("400.00"))]
            )
        assert outcome[escrow.reference] == Decimal("400.00")
    assert selectors.escrow_held(escrow_reference=escrow.reference) == Decimal("600.00")


def _statements(escrows: list[Escrow]) -> int:
    with CaptureQueriesContext(connection) as captured, transaction.atomic():
        outcome = escrows_release_many(
            releases=[EscrowRelease(e.reference, _key(e)) for e in escrows]
        )
    assert all(outcome[e.reference] == Decimal("10.00") for e in escrows)
    return len(captured)


def test_a_batch_costs_the_same_statements_for_10_escrows_as_for_100(run_after_commit):
    # given 110 funded escrows of 6 suppliers: the first 10 of five suppliers never released
    # to, the next 100 of those five and a sixth (so each batch opens payable and debt accounts)
    suppliers = [OrganisationFactory(kind="supplier", country="CN") for _ in range(6)]
    escrows = [
        _funded(
            run_after_commit,
            Decimal("10.00"),
            supplier_organisation=suppliers[i % 5 if i < 10 else i % 6],
        )
        for i in range(110)
    ]
    # when a batch of 10 and then a batch of 100 are released
    ten, hundred = _statements(escrows[:10]), _statements(escrows[10:])
    # then both cost the same few statements (the shared accounts locked, then their unfolded
    # credits read under the lock: payments.ledger.accounts_lock)
    assert ten == hundred <= 17, (ten, hundred)
    assert LedgerTransaction.objects.filter(kind="release").count() == 110
    assert selectors.ledger_verify().ok


def test_a_batch_naming_an_escrow_twice_is_refused_before_anything_moves(run_after_commit):
    # given a funded escrow
    escrow = _funded(run_after_commit)
    before = _money(escrow)
    # when a batch asks to release it twice
    with pytest.raises(ValueError), transaction.atomic():
        escrows_release_many(
            releases=[EscrowRelease(escrow.reference, "a"), EscrowRelease(escrow.reference, "b")]
        )
    # then nothing moved
    assert _money(escrow) == before
