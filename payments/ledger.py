"""The posting primitive every money movement goes through.

Callers (payments.services) open the transaction, lock the escrow row first, check the
idempotency key, then post. Accounts are always locked in ascending id order, so two postings
that touch the same accounts queue up instead of deadlocking or interleaving.
"""

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

from django.db import transaction

from payments.error_codes import PaymentErrorCode
from payments.models import Account, Entry, Escrow, LedgerTransaction, ProviderEvent
from tradeassure.core import clock
from tradeassure.core.errors import Conflict
from tradeassure.core.money import is_exact

Kind = Account.Kind


def account_key(
    *, kind: str, currency: str, escrow: Escrow | None = None, organisation_id: int | None = None
) -> str:
    if escrow is not None:
        return f"{kind}:{escrow.reference}"
    if organisation_id is not None:
        return f"{kind}:org:{organisation_id}:{currency}"
    return f"{kind}:{currency}"


def account_get(
    *, kind: str, currency: str, escrow: Escrow | None = None, organisation_id: int | None = None
) -> Account:
    """The account of that kind, created on first use (safe when two transactions race)."""
    key = account_key(kind=kind, currency=currency, escrow=escrow, organisation_id=organisation_id)
    account, _ = Account.objects.get_or_create(
        key=key,
        defaults={
            "kind": kind,
            "currency": currency,
            "escrow": escrow,
            "organisation_id": organisation_id,
        },
    )
    return account


def accounts_lock(accounts: Iterable[Account]) -> dict[int, Account]:
    """Lock the accounts' rows in ascending id order and return fresh copies by id."""
    ids = sorted({account.pk for account in accounts})
    locked = Account.objects.select_for_update().filter(pk__in=ids).order_by("pk")
    return {account.pk: account for account in locked}


def _violates_sign(account: Account, balance: Decimal) -> bool:
    if account.kind == Kind.PROVIDER_CLEARING:
        return False
    if account.kind == Kind.SUPPLIER_DEBT:
        return balance > 0
    return balance < 0


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
) -> LedgerTransaction:
    """Write one balanced transaction and update the cached balances, or raise and write nothing."""
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

    # The provider clearing account is the outside world's side of every posting: it has no
    # sign rule and no cached balance, so it is never locked and never becomes a hotspot that
    # every capture, refund and payout would queue on.
    to_lock = [account for account in by_id.values() if account.kind != Kind.PROVIDER_CLEARING]
    locked = {**by_id, **accounts_lock(to_lock)}
    new_balances: dict[int, Decimal] = {}
    for account_id in sorted(netted):
        account = locked[account_id]
        if account.kind == Kind.PROVIDER_CLEARING:
            continue
        new_balance = account.balance + netted[account_id]
        if _violates_sign(account, new_balance):
            code = (
                PaymentErrorCode.INSUFFICIENT_ESCROW
                if account.kind == Kind.ESCROW
                else PaymentErrorCode.INSUFFICIENT_FUNDS
            )
            raise Conflict(
                f"Not enough money in {account.get_kind_display().lower()} "
                f"({account.currency} {account.balance} available).",
                code=code,
            )
        new_balances[account_id] = new_balance

    ledger_transaction = LedgerTransaction.objects.create(
        idempotency_key=idempotency_key,
        kind=kind,
        escrow=escrow,
        amount=amount,
        currency=currency,
        provider_event=provider_event,
        memo=memo[:300],
        created_at=clock.now(),
    )
    Entry.objects.bulk_create(
        Entry(
            transaction=ledger_transaction,
            account_id=account_id,
            amount=netted[account_id],
            currency=locked[account_id].currency,
        )
        for account_id in sorted(netted)
        if netted[account_id] != 0
    )
    for account_id, new_balance in new_balances.items():
        # The new value is computed in Decimal here, never by SQL arithmetic, so SQLite's float
        # storage cannot drift below zero.
        Account.objects.filter(pk=account_id).update(balance=new_balance)
    return ledger_transaction
