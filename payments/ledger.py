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

On PostgreSQL the database keeps every rule itself (payments.migrations 0002, 0006, 0008): a
row trigger on each entry applies it to its bounded account's balance (in place, or as an
unfolded entry, folded by the next entry towards the bound) and refuses an overdraft, refuses a
non-positive entry on a credit-only account, and a deferred trigger refuses a transaction that
does not sum to zero. The checks here come first only to answer with a clear error (Conflict)
rather than a database error.
"""

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import DecimalField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce

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
from tradeassure.core.bulk import bulk_insert
from tradeassure.core.errors import Conflict
from tradeassure.core.money import AMOUNT_DECIMAL_PLACES, AMOUNT_MAX_DIGITS, is_exact

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
    """The accounts, in the order asked, read in one query; the missing ones are created on
    first use with one `INSERT … ON CONFLICT DO NOTHING` and read again (safe when two
    transactions race: the loser reads the winner's row), so a batch costs the same few
    statements however many accounts it needs. The `current` ones come with their unfolded
    entries summed (`Account.current_balance`, no further query)."""
    by_key = {
        account.key: account
        for account in Account.objects.filter(key__in=[s.key for s in specs]).with_unfolded(
            keys=[spec.key for spec in current]
        )
    }
    missing = {spec.key: spec for spec in specs if spec.key not in by_key}
    if missing:
        Account.objects.bulk_create(
            [
                Account(
                    key=spec.key,
                    kind=spec.kind,
                    rule=Account.RULE_BY_KIND[spec.kind],
                    currency=spec.currency,
                    escrow=spec.escrow,
                    organisation_id=spec.organisation_id,
                )
                for spec in missing.values()
            ],
            ignore_conflicts=True,
        )
        by_key.update(
            (account.key, account)
            for account in Account.objects.filter(key__in=list(missing)).with_unfolded()
        )
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


def accounts_lock_with_sums(keys: Sequence[str]) -> list[tuple[Account, Decimal]]:
    """Lock these accounts in ascending id order (`FOR NO KEY UPDATE`, one query) and read each
    with the sum of its entries (what its cached balance must equal): the escrows of a batch
    release, checked before anything moves."""
    total = (
        Entry.objects.filter(account=OuterRef("pk"))
        .order_by()
        .values("account")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    amount: DecimalField = DecimalField(
        max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES
    )
    accounts = (
        Account.objects.select_for_update(no_key=True)
        .filter(key__in=list(keys))
        .annotate(entries_total=Coalesce(Subquery(total), Value(Decimal(0)), output_field=amount))
        .order_by("pk")
    )
    return [(account, account.entries_total) for account in accounts]


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


@dataclass(frozen=True)
class Posting:
    """One balanced ledger transaction to write (see `ledger_post`, `ledger_post_many`)."""

    idempotency_key: str
    kind: str
    amount: Decimal
    currency: str
    legs: list[tuple[Account, Decimal]]
    escrow: Escrow | None = None
    memo: str = ""


def _netted(
    idempotency_key: str, legs: list[tuple[Account, Decimal]]
) -> tuple[dict[int, Decimal], dict[int, Account]]:
    """Each account's net change in this posting, after the rules every posting keeps: exact
    amounts, zero-sum per currency, nothing taken from a credit-only account."""
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
    return netted, by_id


def _moved_balance(account: Account, balance: Decimal, delta: Decimal) -> Decimal:
    """A bounded account's balance after `delta`, or Conflict if it would cross its bound."""
    new_balance = balance + delta
    if _at_risk(account, delta) and _violates_sign(account, new_balance):
        code = (
            PaymentErrorCode.INSUFFICIENT_ESCROW
            if account.kind == Kind.ESCROW
            else PaymentErrorCode.INSUFFICIENT_FUNDS
        )
        raise Conflict(
            f"Not enough money in {account.get_kind_display().lower()} "
            f"({account.currency} {balance} available).",
            code=code,
        )
    return new_balance


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
    netted, by_id = _netted(idempotency_key, legs)

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
    new_balances = {
        account_id: _moved_balance(
            fresh[account_id], fresh[account_id].current_balance, netted[account_id]
        )
        for account_id in sorted(netted)
        if account_id in fresh
    }

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
    _write_cached_balances(new_balances)
    return ledger_transaction


def ledger_post_many(postings: list[Posting], *, locked: Mapping[int, Account]) -> list[int]:
    """Write many balanced transactions with two statements (their rows, then all their
    entries), or raise and write nothing; returns the transactions' ids in order.

    The same rules as `ledger_post`, posting by posting, in order: every bounded account of
    every posting must be in `locked` (the caller's `accounts_lock`, taken after it decided the
    legs from those balances), and each posting is checked against the balances the earlier
    ones left. The database checks it all again (entry trigger, deferred zero-sum trigger, the
    idempotency key's unique constraint: a key already used fails the whole batch)."""
    assert transaction.get_connection().in_atomic_block, "ledger_post runs inside a transaction"
    if not postings:
        return []
    running: dict[int, Decimal] = {}
    entries: list[tuple[int, list[tuple[int, Decimal, str]]]] = []
    for index, posting in enumerate(postings):
        netted, by_id = _netted(posting.idempotency_key, posting.legs)
        for account_id in sorted(netted):
            account = by_id[account_id]
            if not account.is_bounded:
                continue
            if account_id not in locked:
                raise ValueError(f"{account.key} must be locked before a batch posts to it.")
            balance = running.get(account_id, locked[account_id].current_balance)
            running[account_id] = _moved_balance(locked[account_id], balance, netted[account_id])
        entries.append(
            (
                index,
                [
                    (account_id, netted[account_id], by_id[account_id].currency)
                    for account_id in sorted(netted)
                    if netted[account_id] != 0
                ],
            )
        )
    now = clock.now()
    ids = bulk_insert(
        LedgerTransaction,
        ["idempotency_key", "kind", "escrow_id", "amount", "currency", "memo", "created_at"],
        [
            (
                p.idempotency_key,
                p.kind,
                p.escrow.pk if p.escrow else None,
                p.amount,
                p.currency,
                p.memo[:300],
                now,
            )
            for p in postings
        ],
        returning=True,
    )
    bulk_insert(
        Entry,
        ["transaction_id", "account_id", "amount", "currency"],
        [
            (ids[index], account_id, leg_amount, currency)
            for index, legs in entries
            for account_id, leg_amount, currency in legs
        ],
    )
    _write_cached_balances(running)
    return ids


def _write_cached_balances(new_balances: Mapping[int, Decimal]) -> None:
    if connection.vendor == "postgresql":
        # PostgreSQL's entry trigger has already applied the entries to the cache.
        return
    # Elsewhere it is written here, the value computed in Decimal, never by SQL arithmetic, so
    # SQLite's float storage cannot drift below zero.
    for account_id, new_balance in new_balances.items():
        Account.objects.filter(pk=account_id).update(balance=new_balance)


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
