"""The posting primitive every money movement goes through.

Callers (payments.services) open the transaction, lock the escrow row first, check the
idempotency key, do the rest of their writes (events, records), and post last, so the account
locks are held for as short a time as possible: from `accounts_lock` to the commit.

Only bounded accounts (Account.Rule: never below zero, never above) are locked, all at once and
in ascending id order, with `FOR NO KEY UPDATE` (entries can still reference the row while it is
locked). Credit-only accounts (platform fee revenue, inspection fees earned) and the provider
clearing account are never locked and keep no cached balance, so two releases for two suppliers
share no lock at all, although both credit the same fee account. On PostgreSQL a shared bounded
account (a supplier's payable or debt: not an escrow's own) is not locked either by an entry
that moves it away from its bound (a release crediting the payable): that entry cannot break
the rule, and is appended as an UnfoldedEntry; only an entry towards the bound (a payout) locks
the account, and its check counts the unfolded entries too. So one supplier's releases do not
queue on its payable.

On PostgreSQL the database keeps every rule itself (payments.migrations 0002, 0006, 0007): a
row trigger on each entry applies it to its bounded account's balance (in place, or as an
unfolded entry, folded by the next entry towards the bound) and refuses an overdraft, refuses a
non-positive entry on a credit-only account, and a deferred trigger refuses a transaction that
does not sum to zero. The checks here come first only to answer with a clear error (Conflict)
rather than a database error.
"""

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.db.models import Sum

from payments.error_codes import PaymentErrorCode
from payments.models import (
    Account,
    Entry,
    Escrow,
    LedgerTransaction,
    ProviderEvent,
    UnfoldedEntry,
)
from tradeassure.core import clock
from tradeassure.core.errors import Conflict
from tradeassure.core.money import is_exact

Kind = Account.Kind
Rule = Account.Rule


def account_key(
    *, kind: str, currency: str, escrow: Escrow | None = None, organisation_id: int | None = None
) -> str:
    if escrow is not None:
        return f"{kind}:{escrow.reference}"
    if organisation_id is not None:
        return f"{kind}:org:{organisation_id}:{currency}"
    return f"{kind}:{currency}"


@dataclass(frozen=True)
class AccountSpec:
    """Which account: its kind and currency, and the escrow or organisation it belongs to."""

    kind: str
    currency: str
    escrow: Escrow | None = None
    organisation_id: int | None = None

    @property
    def key(self) -> str:
        return account_key(
            kind=self.kind,
            currency=self.currency,
            escrow=self.escrow,
            organisation_id=self.organisation_id,
        )


def account_get(
    *, kind: str, currency: str, escrow: Escrow | None = None, organisation_id: int | None = None
) -> Account:
    """The account of that kind, created on first use (safe when two transactions race)."""
    spec = AccountSpec(kind=kind, currency=currency, escrow=escrow, organisation_id=organisation_id)
    return accounts_get([spec])[0]


def accounts_get(
    specs: list[AccountSpec], *, current: Collection[AccountSpec] = ()
) -> list[Account]:
    """The accounts, in the order asked, read in one query; any missing is created on first use
    (safe when two transactions race: the loser reads the winner's row). The `current` ones
    come with their unfolded entries summed (`Account.current_balance`, no further query)."""
    by_key = {
        account.key: account
        for account in Account.objects.filter(key__in=[s.key for s in specs]).with_unfolded(
            keys=[spec.key for spec in current]
        )
    }
    for spec in specs:
        if spec.key in by_key:
            continue
        try:
            with transaction.atomic():
                created = Account.objects.create(
                    key=spec.key,
                    kind=spec.kind,
                    rule=Account.RULE_BY_KIND[spec.kind],
                    currency=spec.currency,
                    escrow=spec.escrow,
                    organisation_id=spec.organisation_id,
                )
            created.unfolded_total = Decimal(0)
            by_key[spec.key] = created
        except IntegrityError:
            by_key[spec.key] = Account.objects.with_unfolded().get(key=spec.key)
    return [by_key[spec.key] for spec in specs]


def accounts_lock(accounts: Iterable[Account]) -> dict[int, Account]:
    """Lock the bounded ones of these accounts in ascending id order (one query) and return fresh
    copies by id. Credit-only and unbounded accounts are left out: nothing needs them locked.

    `FOR NO KEY UPDATE` serialises balance changes but lets other transactions insert entries
    that reference the row (their foreign-key check takes only a key-share lock)."""
    ids = sorted({account.pk for account in accounts if account.is_bounded})
    if not ids:
        return {}
    locked = {
        account.pk: account
        for account in Account.objects.select_for_update(no_key=True)
        .filter(pk__in=ids)
        .order_by("pk")
    }
    _read_unfolded([account for account in locked.values() if account.is_shared])
    return locked


def _read_unfolded(accounts: list[Account]) -> None:
    """Set `unfolded_total` on these locked accounts, read after the lock was granted (a new
    statement: it sees every unfolded entry committed before then), so `current_balance` is
    what the entry trigger will check against."""
    if not accounts:
        return
    totals = dict(
        UnfoldedEntry.objects.filter(account_id__in=[a.pk for a in accounts])
        .order_by()
        .values("account_id")
        .annotate(total=Sum("amount"))
        .values_list("account_id", "total")
    )
    for account in accounts:
        account.unfolded_total = totals.get(account.pk, Decimal(0))


def _violates_sign(account: Account, balance: Decimal) -> bool:
    if account.rule == Rule.NON_POSITIVE:
        return balance > 0
    return balance < 0


def _at_risk(account: Account, delta: Decimal) -> bool:
    """Whether this change moves a bounded account towards the side it must not cross."""
    if account.rule == Rule.NON_NEGATIVE:
        return delta < 0
    if account.rule == Rule.NON_POSITIVE:
        return delta > 0
    return False


def ledger_post(
    *,
    idempotency_key: str,
    kind: str,
    amount: Decimal,
    currency: str,
    legs: list[tuple[Account, Decimal]],
    escrow: Escrow | None = None,
    provider_event: ProviderEvent | None = None,
    memo: str = "",
    locked: Mapping[int, Account] | None = None,
) -> LedgerTransaction:
    """Write one balanced transaction (and update the bounded accounts' cached balances), or
    raise and write nothing.

    `locked`: what the caller's own `accounts_lock` returned, if it had to read balances to
    decide the legs; those accounts are not locked twice. Any other bounded account of the
    legs is locked here, in one id-ordered query.
    """
    assert transaction.get_connection().in_atomic_block, "ledger_post runs inside a transaction"
    netted: dict[int, Decimal] = defaultdict(Decimal)
    by_id: dict[int, Account] = {}
    for account, leg_amount in legs:
        if not isinstance(leg_amount, Decimal) or not is_exact(leg_amount, account.currency):
            raise ValueError(f"Leg amount {leg_amount!r} is not exact in {account.currency}.")
        netted[account.pk] += leg_amount
        by_id[account.pk] = account
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for account_id, leg_amount in netted.items():
        sums[by_id[account_id].currency] += leg_amount
    if any(total != 0 for total in sums.values()):
        raise ValueError(f"Unbalanced posting {idempotency_key}: {dict(sums)}")
    for account_id, delta in netted.items():
        if by_id[account_id].rule == Rule.CREDIT_ONLY and delta < 0:
            raise ValueError(f"{by_id[account_id].key} is credit-only; cannot post {delta}.")

    already = dict(locked or {})
    missing = [account for pk, account in by_id.items() if account.is_bounded and pk not in already]
    if connection.vendor == "postgresql":
        # A shared account moved away from its bound (the payable a release credits) gets an
        # unfolded entry from the trigger: no lock, nothing to check.
        missing = [
            account
            for account in missing
            if not account.is_shared or _at_risk(account, netted[account.pk])
        ]
        if not any(_at_risk(account, netted[account.pk]) for account in missing):
            # Only credits to an escrow's accounts are left (a capture): nothing to check, and
            # the entry trigger updates their caches, locking them in id order as it goes.
            missing = []
    fresh = {**already, **accounts_lock(missing)}
    new_balances: dict[int, Decimal] = {}
    for account_id in sorted(netted):
        if account_id not in fresh:
            continue
        account = fresh[account_id]
        new_balance = account.current_balance + netted[account_id]
        if _at_risk(account, netted[account_id]) and _violates_sign(account, new_balance):
            code = (
                PaymentErrorCode.INSUFFICIENT_ESCROW
                if account.kind == Kind.ESCROW
                else PaymentErrorCode.INSUFFICIENT_FUNDS
            )
            raise Conflict(
                f"Not enough money in {account.get_kind_display().lower()} "
                f"({account.currency} {account.current_balance} available).",
                code=code,
            )
        new_balances[account_id] = new_balance

    ledger_transaction = LedgerTransaction(
        idempotency_key=idempotency_key,
        kind=kind,
        escrow=escrow,
        amount=amount,
        currency=currency,
        provider_event=provider_event,
        memo=memo[:300],
        created_at=clock.now(),
    )
    # In id order, so the trigger takes any lock it still needs in the same order as
    # accounts_lock does.
    entries = [
        (account_id, netted[account_id], by_id[account_id].currency)
        for account_id in sorted(netted)
        if netted[account_id] != 0
    ]
    if connection.vendor == "postgresql":
        _insert_transaction_with_entries(ledger_transaction, entries)
        return ledger_transaction
    ledger_transaction.save(force_insert=True)
    Entry.objects.bulk_create(
        Entry(transaction=ledger_transaction, account_id=account_id, amount=value, currency=cur)
        for account_id, value, cur in entries
    )
    # PostgreSQL's entry trigger applies the entries to the cache. Elsewhere it is written here,
    # the value computed in Decimal, never by SQL arithmetic, so SQLite's float storage cannot
    # drift below zero.
    for account_id, new_balance in new_balances.items():
        if netted[account_id] != 0:
            Account.objects.filter(pk=account_id).update(balance=new_balance)
    return ledger_transaction


def _insert_transaction_with_entries(
    ledger_transaction: LedgerTransaction, entries: list[tuple[int, Decimal, str]]
) -> None:
    """PostgreSQL: the transaction and its entries written by ONE statement (a data-modifying
    CTE; the entries in the order given, so their row triggers run in that order), its id set
    on `ledger_transaction`. The triggers and constraints are the same as for two INSERTs: the
    idempotency key's uniqueness, the entries' rules, the deferred zero-sum check."""
    quote = connection.ops.quote_name
    t = ledger_transaction
    sql = (
        f"WITH t AS (INSERT INTO {quote(LedgerTransaction._meta.db_table)} (idempotency_key, "
        "kind, escrow_id, amount, currency, provider_event_id, memo, created_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id), "
        f"e AS (INSERT INTO {quote(Entry._meta.db_table)} (transaction_id, account_id, amount, "
        "currency) SELECT t.id, e.account_id, e.amount, e.currency FROM t, "
        "unnest(%s::bigint[], %s::numeric[], %s::text[]) WITH ORDINALITY "
        "AS e(account_id, amount, currency, n) ORDER BY e.n) "
        "SELECT id FROM t"
    )
    params = [
        t.idempotency_key,
        t.kind,
        t.escrow_id,
        t.amount,
        t.currency,
        t.provider_event_id,
        t.memo,
        t.created_at,
        [account_id for account_id, _, _ in entries],
        [value for _, value, _ in entries],
        [currency for _, _, currency in entries],
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        (t.pk,) = cursor.fetchone()
    t._state.adding = False
