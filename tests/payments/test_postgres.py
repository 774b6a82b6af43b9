"""PostgreSQL: real threads racing on one escrow, and raw SQL that must not break the ledger."""

import threading
from collections import Counter
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction

from payments import selectors, services
from payments.models import Account, Entry, LedgerTransaction, Refund
from tests.payments.factories import EscrowFactory, pay_by_card
from tradeassure.core.errors import Conflict

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def funded():
    escrow = EscrowFactory(currency="USD")
    pay_by_card(escrow, Decimal("1000.00"))  # autocommit: the sandbox webhook runs on commit
    assert selectors.escrow_summary(escrow_reference=escrow.reference).held == Decimal("1000.00")
    return escrow


def test_twenty_threads_racing_release_refund_partial_refund(funded):
    # given 20 threads (mostly two per idempotency key) releasing 150, refunding 200 and
    # refunding 35: 1,505.00 asked of 1,000.00 held
    operations = []
    for index in range(20):
        kind = ("release", "refund", "partial_refund")[index % 3]
        amount = {"release": Decimal("150.00"), "refund": Decimal("200.00")}.get(
            kind, Decimal("35.00")
        )
        operations.append((kind, amount, f"{kind}-{index // 6}"))
    barrier = threading.Barrier(len(operations))
    outcomes: list[tuple[str, str]] = []
    lock = threading.Lock()

    def run(kind: str, amount: Decimal, key: str) -> None:
        try:
            barrier.wait(timeout=30)
            if kind == "release":
                services.escrow_release(
                    escrow_reference=funded.reference, amount=amount, idempotency_key=key
                )
            else:
                services.escrow_refund(
                    escrow_reference=funded.reference,
                    amount=amount,
                    idempotency_key=key,
                    reason="race",
                )
            outcome = "ok"
        except Conflict as error:
            outcome = error.code
        except Exception as error:  # recorded, so the assertion below shows it
            outcome = f"error:{type(error).__name__}:{error}"
        finally:
            connection.close()
        with lock:
            outcomes.append((key, outcome))

    # when they all run at once
    threads = [threading.Thread(target=run, args=operation) for operation in operations]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    # then only "ok" or "insufficient_escrow" happened, no deadlock or other error
    assert len(outcomes) == 20
    assert {outcome for _, outcome in outcomes} == {"ok", "insufficient_escrow"}, outcomes
    # both threads sharing a key saw the same outcome (the second replayed the first)
    by_key: dict[str, set[str]] = {}
    for key, outcome in outcomes:
        by_key.setdefault(key, set()).add(outcome)
    assert all(len(seen) == 1 for seen in by_key.values()), by_key
    # each idempotency key applied at most once
    keys = [op[2] for op in operations]
    applied = Counter(
        LedgerTransaction.objects.filter(idempotency_key__in=keys).values_list(
            "idempotency_key", flat=True
        )
    )
    assert all(count == 1 for count in applied.values())
    assert set(applied) == {key for key, outcome in outcomes if outcome == "ok"}
    # the money moved never exceeds what was held, and what is left is exactly the rest
    summary = selectors.escrow_summary(escrow_reference=funded.reference)
    amount_by_key = {key: amount for _, amount, key in operations}
    moved = sum((amount_by_key[key] for key in applied), Decimal("0"))
    assert moved <= Decimal("1000.00")
    assert summary.released + summary.refunded == moved
    assert summary.held == Decimal("1000.00") - moved
    assert (
        Refund.objects.filter(kind="escrow").count()
        == LedgerTransaction.objects.filter(kind="refund").count()
    )
    # and the ledger balances afterwards
    report = selectors.ledger_verify()
    assert report.ok, report.violations


def _escrow_account(escrow) -> Account:
    return Account.objects.get(key=f"escrow:{escrow.reference}")


def _insert_transaction(cursor, key: str) -> int:
    cursor.execute(
        "INSERT INTO payments_ledgertransaction (idempotency_key, kind, amount, currency, memo,"
        " created_at) VALUES (%s, 'capture', 100, 'USD', 'raw', now()) RETURNING id",
        [key],
    )
    return cursor.fetchone()[0]


def _state() -> tuple:
    return (
        LedgerTransaction.objects.count(),
        Entry.objects.count(),
        list(Account.objects.order_by("pk").values_list("balance", flat=True)),
    )


def test_raw_sql_unbalanced_transaction_fails_at_commit(funded):
    before = _state()
    account = _escrow_account(funded)
    # when raw SQL writes a transaction with a single +100 entry and commits
    with (
        pytest.raises(DatabaseError, match="does not balance"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        tx_id = _insert_transaction(cursor, "raw-unbalanced")
        cursor.execute(
            "INSERT INTO payments_entry (transaction_id, account_id, amount, currency)"
            " VALUES (%s, %s, 100, 'USD')",
            [tx_id, account.pk],
        )
    # then the commit was refused and nothing changed
    assert _state() == before


def test_raw_sql_overdrawing_escrow_fails(funded):
    before = _state()
    escrow_account = _escrow_account(funded)
    clearing = Account.objects.get(key="provider_clearing:USD")
    # when raw SQL moves 1000.01 out of an escrow holding 1000.00, balanced
    with (
        pytest.raises(DatabaseError, match="overdrawn"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        tx_id = _insert_transaction(cursor, "raw-overdraw")
        cursor.execute(
            "INSERT INTO payments_entry (transaction_id, account_id, amount, currency)"
            " VALUES (%s, %s, -1000.01, 'USD'), (%s, %s, 1000.01, 'USD')",
            [tx_id, escrow_account.pk, tx_id, clearing.pk],
        )
    assert _state() == before


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE payments_entry SET amount = amount * 2",
        "DELETE FROM payments_entry",
        "UPDATE payments_ledgertransaction SET amount = 1",
        "DELETE FROM payments_ledgertransaction",
        "UPDATE payments_account SET balance = balance + 5 WHERE kind = 'escrow'",
        "UPDATE payments_account SET balance = -1 WHERE kind = 'escrow'",
    ],
)
def test_raw_sql_cannot_rewrite_the_ledger(funded, statement):
    before = _state()
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    assert _state() == before


def test_raw_sql_entry_in_wrong_currency_fails(funded):
    before = _state()
    escrow_account = _escrow_account(funded)
    with (
        pytest.raises(DatabaseError, match="currency"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        tx_id = _insert_transaction(cursor, "raw-currency")
        cursor.execute(
            "INSERT INTO payments_entry (transaction_id, account_id, amount, currency)"
            " VALUES (%s, %s, 5, 'EUR')",
            [tx_id, escrow_account.pk],
        )
    assert _state() == before


def test_ledger_check_passes_after_real_traffic(funded):
    services.escrow_release(
        escrow_reference=funded.reference, amount=Decimal("400.00"), idempotency_key="a"
    )
    services.escrow_refund(
        escrow_reference=funded.reference, amount=Decimal("600.00"), idempotency_key="b", reason=""
    )
    report = selectors.ledger_verify()
    assert report.ok, report.violations
    assert report.stats["held_in_escrow"] == {"USD": "0.00"}
