"""PostgreSQL, real threads: the ledger without a hot account.

Releases lock only the accounts that must not cross zero (the escrow, the supplier's payable and
debt); platform fee revenue is credit-only, never locked. These tests show that many releases
run at once without an error, that distinct suppliers share no lock, and that the faster path
still refuses everything the old one (every account locked and re-summed) refused.
"""

import threading
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction

from payments import ledger, selectors, services
from payments.models import ACCOUNT_RULES, Account, Entry, LedgerTransaction, UnfoldedEntry
from tests.factories import OrganisationFactory
from tests.payments.factories import EscrowFactory, pay_by_card
from tradeassure.core.errors import Conflict
from tradeassure.core.money import release_fee

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 16


def _funded(supplier_organisation, amount: Decimal = Decimal("100.00")):
    escrow = EscrowFactory(currency="USD", supplier_organisation=supplier_organisation)
    pay_by_card(escrow, amount)  # autocommit: the sandbox webhook runs on commit
    return escrow


def _race(calls: list[Callable[[], object]]) -> list[str]:
    """Run every call in its own thread, released together; each outcome is "ok", a Conflict's
    code, or "error:…" (which the tests refuse)."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[str] = []
    lock = threading.Lock()

    def run(call: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=60)
            call()
            outcome = "ok"
        except Conflict as error:
            outcome = str(error.code)
        except Exception as error:  # recorded, so the assertion shows it
            outcome = f"error:{type(error).__name__}:{error}"
        finally:
            connection.close()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert len(outcomes) == len(calls), "a thread did not finish"
    return outcomes


def _release(escrow, amount: Decimal = Decimal("100.00")) -> Callable[[], None]:
    return lambda: services.escrow_release(
        escrow_reference=escrow.reference, amount=amount, idempotency_key=f"rel:{escrow.pk}"
    )


def _fees() -> Decimal:
    return selectors.account_balance(key="platform_fees:USD")


def test_sixteen_releases_for_distinct_suppliers_all_succeed_and_balance():
    # given 16 funded escrows of 16 different suppliers
    escrows = [_funded(OrganisationFactory(kind="supplier")) for _ in range(THREADS)]
    fees_before = _fees()

    # when all 16 release at once
    outcomes = _race([_release(escrow) for escrow in escrows])

    # then every release succeeded, none waited into an error, and the ledger balances
    assert outcomes == ["ok"] * THREADS
    fee = release_fee(Decimal("100.00"), "USD")
    assert _fees() - fees_before == fee * THREADS
    for escrow in escrows:
        key = f"supplier_payable:org:{escrow.supplier_organisation_id}:USD"
        assert selectors.account_balance(key=key) == Decimal("100.00") - fee
    assert Account.objects.get(key="platform_fees:USD").balance == 0  # nothing cached, no lock
    report = selectors.ledger_verify()
    assert report.ok, report.violations


def test_sixteen_releases_for_one_hot_supplier_all_succeed_and_balance():
    # given 16 funded escrows of one supplier
    supplier = OrganisationFactory(kind="supplier")
    escrows = [_funded(supplier) for _ in range(THREADS)]

    # when all 16 release at once
    outcomes = _race([_release(escrow) for escrow in escrows])

    # then all succeeded (they queued on the payable, briefly) and the payable holds every net
    assert outcomes == ["ok"] * THREADS
    fee = release_fee(Decimal("100.00"), "USD")
    payable = selectors.account_balance(key=f"supplier_payable:org:{supplier.pk}:USD")
    assert payable == (Decimal("100.00") - fee) * THREADS
    report = selectors.ledger_verify()
    assert report.ok, report.violations


def test_a_release_for_another_supplier_does_not_wait_for_an_open_release():
    # given a release for supplier A whose transaction is still open (its locks held)
    first = _funded(OrganisationFactory(kind="supplier"))
    second = _funded(OrganisationFactory(kind="supplier"))
    # (the currency's fee account exists: it is opened once, by the first release ever)
    ledger.account_get(kind=Account.Kind.PLATFORM_FEES, currency="USD")
    posted, finish = threading.Event(), threading.Event()
    errors: list[str] = []

    def hold_open() -> None:
        try:
            with transaction.atomic():
                services.escrow_release(
                    escrow_reference=first.reference,
                    amount=Decimal("100.00"),
                    idempotency_key="held-open",
                )
                posted.set()
                finish.wait(timeout=120)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(repr(error))
        finally:
            posted.set()
            connection.close()

    holder = threading.Thread(target=hold_open)
    holder.start()
    assert posted.wait(timeout=120)
    try:
        # when supplier B's release runs meanwhile, refusing to wait for any lock at all
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '50ms'")
            services.escrow_release(
                escrow_reference=second.reference,
                amount=Decimal("100.00"),
                idempotency_key="meanwhile",
            )
    finally:
        finish.set()
        holder.join(timeout=120)

    # then it committed while A was still open (the fee account was not locked by either)
    assert errors == []
    assert set(
        LedgerTransaction.objects.filter(kind="release").values_list("idempotency_key", flat=True)
    ) == {"held-open", "meanwhile"}
    assert selectors.ledger_verify().ok


def test_concurrent_payouts_never_overdraw_a_hot_payable_while_releases_credit_it():
    # given a supplier with 1,000.00 payable and 8 more escrows about to be released to it
    supplier = OrganisationFactory(kind="supplier")
    fee = release_fee(Decimal("1031.00"), "USD")
    services.escrow_release(
        escrow_reference=_funded(supplier, Decimal("1031.00")).reference,
        amount=Decimal("1031.00"),
        idempotency_key="seed",
    )
    start = Decimal("1031.00") - fee
    escrows = [_funded(supplier) for _ in range(8)]
    payout_amount = Decimal("150.00")

    def payout(n: int) -> Callable[[], object]:
        return lambda: services.payout_request(
            organisation=supplier,
            currency="USD",
            amount=payout_amount,
            idempotency_key=f"payout-{n}",
        )

    # when 16 payouts (2,400.00 asked) race 8 releases that credit the same payable
    outcomes = _race([payout(n) for n in range(THREADS)] + [_release(e) for e in escrows])

    # then nothing but success or "insufficient funds" happened, and the payable never went
    # below zero: what was paid out is at most what came in
    assert set(outcomes) <= {"ok", "insufficient_funds"}, outcomes
    assert outcomes.count("ok") >= 8 + 1  # the releases, and at least one payout
    paid = payout_amount * (outcomes.count("ok") - 8)
    credited = start + 8 * (Decimal("100.00") - release_fee(Decimal("100.00"), "USD"))
    payable = selectors.account_balance(key=f"supplier_payable:org:{supplier.pk}:USD")
    assert payable == credited - paid
    assert payable >= 0
    report = selectors.ledger_verify()
    assert report.ok, report.violations


def _state() -> tuple:
    return (
        LedgerTransaction.objects.count(),
        Entry.objects.count(),
        list(Account.objects.order_by("pk").values_list("balance", flat=True)),
        list(UnfoldedEntry.objects.order_by("pk").values_list("pk", "amount")),
    )


def _insert_transaction(cursor, key: str) -> int:
    cursor.execute(
        "INSERT INTO payments_ledgertransaction (idempotency_key, kind, amount, currency, memo,"
        " created_at) VALUES (%s, 'release', 1, 'USD', 'raw', now()) RETURNING id",
        [key],
    )
    return cursor.fetchone()[0]


@pytest.fixture
def released():
    """A release has happened, so the fee and payable accounts exist and hold money."""
    escrow = _funded(OrganisationFactory(kind="supplier"), Decimal("1000.00"))
    services.escrow_release(
        escrow_reference=escrow.reference, amount=Decimal("500.00"), idempotency_key="rel"
    )
    return escrow


def test_raw_sql_cannot_overdraw_the_unlocked_fee_account(released):
    # given the fee account (credit-only: never locked, no cached balance) holding the fee
    fees = Account.objects.get(key="platform_fees:USD")
    held = Account.objects.get(key=f"escrow:{released.reference}")
    assert _fees() == release_fee(Decimal("500.00"), "USD") < 100
    before = _state()
    # when raw SQL moves 100 out of it, balanced (the old guard refused this as an overdraft)
    with (
        pytest.raises(DatabaseError, match="credit-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        tx_id = _insert_transaction(cursor, "raw-fee-overdraw")
        cursor.execute(
            "INSERT INTO payments_entry (transaction_id, account_id, amount, currency)"
            " VALUES (%s, %s, -100, 'USD'), (%s, %s, 100, 'USD')",
            [tx_id, fees.pk, tx_id, held.pk],
        )
    # then it was refused, and so is even a debit it could cover
    with (
        pytest.raises(DatabaseError, match="credit-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        tx_id = _insert_transaction(cursor, "raw-fee-debit")
        cursor.execute(
            "INSERT INTO payments_entry (transaction_id, account_id, amount, currency)"
            " VALUES (%s, %s, -1, 'USD'), (%s, %s, 1, 'USD')",
            [tx_id, fees.pk, tx_id, held.pk],
        )
    assert _state() == before


def test_ledger_post_refuses_to_debit_a_credit_only_account(released):
    fees = Account.objects.get(key="platform_fees:USD")
    held = Account.objects.get(key=f"escrow:{released.reference}")
    before = _state()
    with pytest.raises(ValueError, match="credit-only"), transaction.atomic():
        ledger.ledger_post(
            idempotency_key="debit-fees",
            kind="release",
            amount=Decimal("1.00"),
            currency="USD",
            legs=[(fees, Decimal("-1.00")), (held, Decimal("1.00"))],
        )
    assert _state() == before


def test_raw_sql_entry_that_breaks_zero_sum_on_the_fee_account_is_refused(released):
    # given the fee account, which no posting locks
    fees = Account.objects.get(key="platform_fees:USD")
    before = _state()
    # when raw SQL credits it 100 with no other side, then commits
    with (
        pytest.raises(DatabaseError, match="does not balance"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        tx_id = _insert_transaction(cursor, "raw-fee-unbalanced")
        cursor.execute(
            "INSERT INTO payments_entry (transaction_id, account_id, amount, currency)"
            " VALUES (%s, %s, 100, 'USD')",
            [tx_id, fees.pk],
        )
    # then the commit was refused and nothing changed
    assert _state() == before


def test_raw_sql_overdrawing_the_hot_payable_is_refused(released):
    payable = Account.objects.get(
        key=f"supplier_payable:org:{released.supplier_organisation_id}:USD"
    )
    clearing = Account.objects.get(key="provider_clearing:USD")
    net = Decimal("500.00") - release_fee(Decimal("500.00"), "USD")
    assert payable.current_balance == net
    over = net + Decimal("0.01")
    before = _state()
    with (
        pytest.raises(DatabaseError, match="overdrawn"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        tx_id = _insert_transaction(cursor, "raw-payable-overdraw")
        cursor.execute(
            "INSERT INTO payments_entry (transaction_id, account_id, amount, currency)"
            " VALUES (%s, %s, %s, 'USD'), (%s, %s, %s, 'USD')",
            [tx_id, payable.pk, -over, tx_id, clearing.pk, over],
        )
    assert _state() == before


def test_raw_sql_debt_above_zero_is_refused(released):
    # given the supplier's debt account (never above zero), at zero
    debt = ledger.account_get(
        kind=Account.Kind.SUPPLIER_DEBT,
        currency="USD",
        organisation_id=released.supplier_organisation_id,
    )
    clearing = Account.objects.get(key="provider_clearing:USD")
    before = _state()
    with (
        pytest.raises(DatabaseError, match="above zero"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        tx_id = _insert_transaction(cursor, "raw-debt-positive")
        cursor.execute(
            "INSERT INTO payments_entry (transaction_id, account_id, amount, currency)"
            " VALUES (%s, %s, 1, 'USD'), (%s, %s, -1, 'USD')",
            [tx_id, debt.pk, tx_id, clearing.pk],
        )
    assert _state() == before


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE payments_account SET balance = 16 WHERE kind = 'platform_fees'",
        "UPDATE payments_account SET balance = balance + 1 WHERE kind = 'supplier_payable'",
        "UPDATE payments_account SET rule = 'unbounded' WHERE kind = 'supplier_payable'",
        "UPDATE payments_account SET rule = 'unbounded' WHERE kind = 'platform_fees'",
        "UPDATE payments_account SET kind = 'provider_clearing' WHERE kind = 'escrow'",
    ],
)
def test_raw_sql_cannot_uncache_or_relabel_an_account(released, statement):
    before = _state()
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    assert _state() == before


def test_ledger_check_still_detects_an_unbalanced_transaction_written_past_the_triggers(
    released,
):
    # given an unbalanced entry on the fee account written with the triggers switched off (as
    # a restore or a superuser could)
    fees = Account.objects.get(key="platform_fees:USD")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        tx_id = _insert_transaction(cursor, "past-the-triggers")
        cursor.execute(
            "INSERT INTO payments_entry (transaction_id, account_id, amount, currency)"
            " VALUES (%s, %s, -20, 'USD')",
            [tx_id, fees.pk],
        )
    # when the check runs, then it reports the imbalance and the negative revenue
    report = selectors.ledger_verify()
    assert not report.ok
    assert any(f"Transaction #{tx_id} does not balance" in v for v in report.violations)
    assert any("platform_fees:USD is credit-only" in v for v in report.violations)
    assert any("platform_fees:USD is negative" in v for v in report.violations)


def test_every_account_kind_has_a_rule():
    assert set(ACCOUNT_RULES) == set(Account.Kind.values)
    assert set(ACCOUNT_RULES.values()) <= set(Account.Rule.values)
