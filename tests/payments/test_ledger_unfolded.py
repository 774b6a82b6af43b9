"""PostgreSQL, real threads: no hot payable (payments migration 0008, `UnfoldedEntry`).

A credit to a supplier's payable (never below zero) cannot break its rule, so releases append
it as an unfolded entry and lock nothing of the supplier's; only an entry towards the bound (a
payout, a debt settled) locks the account and is checked against the whole balance. These tests
show that one supplier's releases no longer wait for each other, and that the database still
refuses every overdraft, double capture and double release, changing nothing when it does.
"""

import threading
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import Sum

from payments import ledger, selectors, services
from payments.models import Account, Entry, LedgerTransaction, UnfoldedEntry
from payments.providers.sandbox import deliver_event, event_body
from tests.factories import OrganisationFactory
from tests.payments.factories import EscrowFactory, pay_by_card, payment_started
from tradeassure.core.errors import Conflict
from tradeassure.core.money import release_fee

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 16
NET = Decimal("100.00") - release_fee(Decimal("100.00"), "USD")


def _funded(supplier_organisation, amount: Decimal = Decimal("100.00")):
    escrow = EscrowFactory(currency="USD", supplier_organisation=supplier_organisation)
    pay_by_card(escrow, amount)  # autocommit: the sandbox webhook runs on commit
    return escrow


def _release(escrow, key: str | None = None) -> None:
    services.escrow_release(
        escrow_reference=escrow.reference,
        amount=Decimal("100.00"),
        idempotency_key=key or f"rel:{escrow.pk}",
    )


def _race(calls: list[Callable[[], object]]) -> list[str]:
    """Every call in its own thread, released together: "ok", a Conflict's code, "refused" for
    a database error raised by the ledger's triggers, or "error:…" (which the tests refuse)."""
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
        except DatabaseError as error:
            outcome = "refused" if "overdrawn" in str(error) else f"error:{error}"
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


def _payable(supplier) -> Account:
    return ledger.account_get(
        kind=Account.Kind.SUPPLIER_PAYABLE, currency="USD", organisation_id=supplier.pk
    )


def _unfolded(account: Account) -> Decimal:
    total = UnfoldedEntry.objects.filter(account=account).aggregate(total=Sum("amount"))["total"]
    return total or Decimal("0")


def _state() -> tuple:
    return (
        LedgerTransaction.objects.count(),
        Entry.objects.count(),
        list(Account.objects.order_by("pk").values_list("balance", flat=True)),
        list(UnfoldedEntry.objects.order_by("pk").values_list("pk", "amount")),
    )


def test_a_release_for_the_same_supplier_does_not_wait_for_an_open_release():
    # given two funded escrows of ONE supplier, and a release of the first still open (its
    # locks held until it commits)
    supplier = OrganisationFactory(kind="supplier")
    first, second = _funded(supplier), _funded(supplier)
    _release(_funded(supplier), key="opens-the-accounts")  # fee, payable and debt exist
    posted, finish = threading.Event(), threading.Event()
    errors: list[str] = []

    def hold_open() -> None:
        try:
            with transaction.atomic():
                _release(first, key="held-open")
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
        # when the second release for the same supplier runs meanwhile, refusing to wait for
        # any lock at all
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '50ms'")
            _release(second, key="meanwhile")
    finally:
        finish.set()
        holder.join(timeout=120)

    # then it committed while the first was still open: the payable was not locked by either
    assert errors == []
    payable = _payable(supplier)
    assert payable.current_balance == 3 * NET
    assert selectors.ledger_verify().ok


def test_releases_append_to_the_payable_and_a_payout_folds_them_in():
    # given three releases to one supplier
    supplier = OrganisationFactory(kind="supplier")
    for escrow in [_funded(supplier) for _ in range(3)]:
        _release(escrow)
    payable = _payable(supplier)

    # then its cache holds nothing yet: the credits wait as unfolded entries
    assert (payable.balance, _unfolded(payable)) == (Decimal("0.00"), 3 * NET)
    assert selectors.account_balance(key=payable.key) == 3 * NET
    assert selectors.supplier_balances(organisation=supplier)[0].available == 3 * NET

    # when the supplier is paid out part of it
    services.payout_request(
        organisation=supplier, currency="USD", amount=NET, idempotency_key="payout"
    )

    # then the payout folded every credit into the cache and took its amount from it
    payable.refresh_from_db()
    assert (payable.balance, _unfolded(payable)) == (2 * NET, Decimal("0"))
    report = selectors.ledger_verify()
    assert report.ok, report.violations


def test_sixteen_raw_debits_racing_on_unfolded_credits_never_overdraw_the_payable():
    # given a payable holding 5 x NET, all of it as unfolded credits (its cache is 0)
    supplier = OrganisationFactory(kind="supplier")
    for escrow in [_funded(supplier) for _ in range(5)]:
        _release(escrow)
    payable = _payable(supplier)
    clearing = Account.objects.get(key="provider_clearing:USD")
    assert (payable.balance, payable.current_balance) == (Decimal("0.00"), 5 * NET)
    transactions_before = LedgerTransaction.objects.count()

    def raw_debit(n: int) -> Callable[[], None]:
        # past every check in Python: only the database's entry trigger stands in the way
        def debit() -> None:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO payments_ledgertransaction (idempotency_key, kind, amount,"
                    " currency, memo, created_at) VALUES (%s, 'payout', %s, 'USD', 'raw', now())"
                    " RETURNING id",
                    [f"raw-debit-{n}", NET],
                )
                tx_id = cursor.fetchone()[0]
                cursor.execute(
                    "INSERT INTO payments_entry (transaction_id, account_id, amount, currency)"
                    " VALUES (%s, %s, %s, 'USD'), (%s, %s, %s, 'USD')",
                    [tx_id, payable.pk, -NET, tx_id, clearing.pk, NET],
                )

        return debit

    # when 16 threads each move NET out of it at once
    outcomes = _race([raw_debit(n) for n in range(THREADS)])

    # then exactly five were let through, the other eleven refused by the database without an
    # error of any other kind, and the payable ends at exactly zero
    assert sorted(outcomes) == ["ok"] * 5 + ["refused"] * 11, outcomes
    payable.refresh_from_db()
    assert (payable.balance, _unfolded(payable)) == (Decimal("0.00"), Decimal("0"))
    assert LedgerTransaction.objects.count() == transactions_before + 5
    report = selectors.ledger_verify()
    assert report.ok, report.violations


def test_payouts_racing_releases_of_a_hot_supplier_never_overdraw_and_refuse_cleanly():
    # given a supplier with 2 x NET payable (unfolded) and 8 escrows about to be released to it
    supplier = OrganisationFactory(kind="supplier")
    for escrow in [_funded(supplier) for _ in range(2)]:
        _release(escrow)
    escrows = [_funded(supplier) for _ in range(8)]

    def payout(n: int) -> Callable[[], object]:
        return lambda: services.payout_request(
            organisation=supplier, currency="USD", amount=NET, idempotency_key=f"payout-{n}"
        )

    # when 8 payouts of NET race the 8 releases that credit the same payable
    outcomes = _race([payout(n) for n in range(8)] + [lambda e=e: _release(e) for e in escrows])

    # then every release and between 2 and 8 payouts succeeded, the rest were refused as
    # "insufficient funds" (never a database error), and the payable is what came in less
    # what went out, never below zero
    assert set(outcomes) <= {"ok", "insufficient_funds"}, outcomes
    paid = outcomes.count("ok") - 8
    assert 2 <= paid <= 8
    balance = _payable(supplier).current_balance
    assert balance == 10 * NET - paid * NET >= 0
    report = selectors.ledger_verify()
    assert report.ok, report.violations


def test_concurrent_releases_settle_a_debt_exactly_once():
    # given a supplier that owes 30.00 (a debt: never above zero) and 8 funded escrows
    supplier = OrganisationFactory(kind="supplier")
    escrows = [_funded(supplier) for _ in range(8)]
    debt = ledger.account_get(
        kind=Account.Kind.SUPPLIER_DEBT, currency="USD", organisation_id=supplier.pk
    )
    clearing = ledger.account_get(kind=Account.Kind.PROVIDER_CLEARING, currency="USD")
    with transaction.atomic():
        ledger.ledger_post(
            idempotency_key="owed",
            kind=LedgerTransaction.Kind.INSPECTION_FEE_SETTLE,
            amount=Decimal("30.00"),
            currency="USD",
            legs=[(debt, Decimal("-30.00")), (clearing, Decimal("30.00"))],
        )
    debt = Account.objects.with_unfolded().get(pk=debt.pk)
    assert (debt.balance, debt.current_balance) == (Decimal("0.00"), Decimal("-30.00"))

    # when all 8 are released at once
    outcomes = _race([lambda e=e: _release(e) for e in escrows])

    # then all succeeded, the debt was settled once (to zero, never above), and the payable
    # got the rest
    assert outcomes == ["ok"] * 8
    debt = Account.objects.with_unfolded().get(pk=debt.pk)
    assert debt.current_balance == 0
    assert _payable(supplier).current_balance == 8 * NET - Decimal("30.00")
    report = selectors.ledger_verify()
    assert report.ok, report.violations


def test_the_same_release_sixteen_times_at_once_moves_the_money_once():
    # given one funded escrow
    supplier = OrganisationFactory(kind="supplier")
    escrow = _funded(supplier)

    # when 16 threads release it with the same idempotency key at once
    outcomes = _race([lambda: _release(escrow, key="once")] * THREADS)

    # then all answered without an error, and one release moved the money
    assert outcomes == ["ok"] * THREADS
    assert LedgerTransaction.objects.filter(kind="release").count() == 1
    assert selectors.account_balance(key=f"escrow:{escrow.reference}") == 0
    assert _payable(supplier).current_balance == NET
    assert selectors.ledger_verify().ok


def test_a_second_release_with_a_new_key_is_refused_and_changes_nothing():
    supplier = OrganisationFactory(kind="supplier")
    escrow = _funded(supplier)
    _release(escrow, key="first")
    before = _state()
    with pytest.raises(Conflict) as refused:
        _release(escrow, key="second")
    assert refused.value.code == "insufficient_escrow"
    assert _state() == before


def test_the_same_capture_webhook_sixteen_times_at_once_captures_once():
    # given a card payment the provider captured, its webhook about to be delivered 16 times
    escrow = EscrowFactory(currency="USD")
    payment = payment_started(escrow, Decimal("100.00"))
    event = event_body(
        "payment.captured",
        payment.provider_reference,
        amount=Decimal("100.00"),
        currency="USD",
        charge_id="ch_once",
    )

    # when all 16 deliveries run at once
    outcomes = _race([lambda: deliver_event(event)] * THREADS)

    # then none failed, and the money was captured once
    assert outcomes == ["ok"] * THREADS
    assert LedgerTransaction.objects.filter(kind="capture").count() == 1
    assert selectors.account_balance(key=f"escrow:{escrow.reference}") == Decimal("100.00")

    # and the same charge in a new event is not applied again, changing nothing
    before = _state()
    again = event_body(
        "payment.captured",
        payment.provider_reference,
        amount=Decimal("100.00"),
        currency="USD",
        charge_id="ch_once",
    )
    assert deliver_event(again) == "ignored"
    assert _state() == before
    assert selectors.ledger_verify().ok


@pytest.fixture
def credited():
    """A supplier's payable holding one release's net as an unfolded entry."""
    supplier = OrganisationFactory(kind="supplier")
    _release(_funded(supplier))
    return _payable(supplier)


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO payments_unfoldedentry (entry_id, account_id, amount)"
        " SELECT id, account_id, amount FROM payments_entry WHERE amount < 0 LIMIT 1",
        "UPDATE payments_unfoldedentry SET amount = amount * 2",
        "DELETE FROM payments_unfoldedentry",
    ],
)
def test_raw_sql_cannot_write_unfolded_entries(credited, statement):
    before = _state()
    with (
        pytest.raises(DatabaseError, match="entry trigger only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    assert _state() == before


def test_ledger_check_detects_an_unfolded_entry_written_past_the_triggers(credited):
    # given an unfolded entry doubled with the triggers switched off (as a superuser could)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE payments_unfoldedentry SET amount = amount * 2")
    entry_id = UnfoldedEntry.objects.get(account=credited).pk

    # when the check runs, then it reports the entry and the balance that no longer adds up
    report = selectors.ledger_verify()
    assert not report.ok
    assert f"Unfolded entry #{entry_id} is not an entry away from its bound" in report.violations
    assert any(f"Account {credited.key}: cached balance" in v for v in report.violations)
