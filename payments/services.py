"""Every write to money: escrows, payments, releases, refunds, payouts, provider webhooks.

Each operation is one database transaction that locks the escrow row first and then the ledger
accounts in id order, checks its idempotency key under that lock (a replay returns without moving
anything), refuses to move more than is held, and posts one balanced ledger transaction.
Provider calls happen after commit; the provider's answers come back as webhooks.
"""

import json
import logging
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any, cast

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, Value
from django.utils.module_loading import import_string

from accounts.team import Capability, team_require
from payments import ledger
from payments.error_codes import PaymentErrorCode
from payments.models import (
    Account,
    Escrow,
    LedgerTransaction,
    Payment,
    Payout,
    ProviderEvent,
    Refund,
    UnappliedTransfer,
)
from payments.providers import provider_get
from payments.providers.base import (
    BrowserCardProvider,
    CardConfirmingProvider,
    EventNotUsed,
    MalformedEvent,
    PaymentDeclined,
    ProviderEventData,
    WebhookSignatureInvalid,
)
from payments.references import escrow_reference_for_order
from payments.topics import PaymentTopic
from tradeassure.core import clock
from tradeassure.core.errors import (
    Conflict,
    DomainError,
    NotAllowed,
    NotFound,
    Unprocessable,
    ValidationFailed,
)
from tradeassure.core.money import MINOR_UNITS, format_money, is_exact, release_fee
from tradeassure.platform.error_codes import PlatformErrorCode
from tradeassure.platform.events import EventSpec, event_publish, events_publish_many, notify
from tradeassure.platform.models import SystemAlert

logger = logging.getLogger(__name__)

Kind = Account.Kind
TxKind = LedgerTransaction.Kind
APPLIED = ProviderEvent.Status.APPLIED
IGNORED = ProviderEvent.Status.IGNORED
UNMATCHED = ProviderEvent.Status.UNMATCHED
HELD = ProviderEvent.Status.HELD
ZERO = Decimal("0")


# --- helpers ------------------------------------------------------------------------------
def _check_amount(amount: Decimal, currency: str) -> Decimal:
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise ValidationFailed(
            "The amount must be a decimal number.", code=PaymentErrorCode.INVALID_AMOUNT
        )
    if amount <= 0:
        raise ValidationFailed(
            "The amount must be more than zero.", code=PaymentErrorCode.INVALID_AMOUNT
        )
    if not is_exact(amount, currency):
        places = MINOR_UNITS[currency]
        raise ValidationFailed(
            f"{currency} amounts have {places} decimal places at most.",
            code=PaymentErrorCode.INVALID_AMOUNT,
        )
    return amount


def _escrow_lock(escrow_reference: str) -> Escrow:
    escrow = Escrow.objects.select_for_update().filter(reference=escrow_reference).first()
    if escrow is None:
        raise NotFound(f"No escrow {escrow_reference!r}.", code=PaymentErrorCode.ESCROW_NOT_FOUND)
    return escrow


def escrow_lock_for_order(*, order_id: int) -> None:
    """Lock the escrow of this order (if it has one yet). Every service that moves an order's
    money takes this lock before the order's own, as the capture hook does, so no two paths
    wait on each other in opposite orders."""
    list(
        Escrow.objects.select_for_update()
        .filter(reference=escrow_reference_for_order(order_id))
        .values("pk")
    )


def escrows_lock_for_orders(*, order_ids: Sequence[int]) -> list[int]:
    """Lock the escrows of these orders in key order, skipping any another transaction holds
    (a set-based sweep takes them before the orders, like every money service, and waits for
    nobody). An escrow on hold for review is left alone too. Returns the order ids this
    transaction may now lock and move: those whose escrow it holds, and those that have none
    yet."""
    references = {escrow_reference_for_order(pk): pk for pk in order_ids}
    locked = set(
        Escrow.objects.select_for_update(skip_locked=True)
        .filter(reference__in=list(references), on_hold=False)
        .order_by("pk")
        .values_list("reference", flat=True)
    )
    rest = [reference for reference in references if reference not in locked]
    held_elsewhere = set(
        Escrow.objects.filter(reference__in=rest).values_list("reference", flat=True)
    )
    return sorted(pk for ref, pk in references.items() if ref not in held_elsewhere)


def _replayed(*, idempotency_key: str, kind: str, escrow: Escrow | None, amount=None) -> bool:
    """True if this key was already applied to the same operation; 422 if used for another."""
    _require_key(idempotency_key)
    existing = LedgerTransaction.objects.filter(idempotency_key=idempotency_key).first()
    return _is_replay(existing, kind=kind, escrow=escrow, amount=amount)


def _require_key(idempotency_key: str) -> None:
    if not idempotency_key:
        raise ValidationFailed(
            "An idempotency key is required.", code=PaymentErrorCode.IDEMPOTENCY_KEY_MISSING
        )


def _is_replay(
    existing: LedgerTransaction | None, *, kind: str, escrow: Escrow | None, amount=None
) -> bool:
    """Whether the transaction already posted under a key is this very operation (a replay,
    nothing to do); 422 if the key was used for another one."""
    if existing is None:
        return False
    same = existing.kind == kind and existing.escrow_id == (escrow.pk if escrow else None)
    if amount is not None:
        same = same and existing.amount == amount
    if not same:
        raise Unprocessable(
            "This idempotency key was already used for a different operation.",
            code=PlatformErrorCode.IDEMPOTENCY_KEY_REUSED,
        )
    return True


def _refuse_if_frozen(escrow: Escrow) -> None:
    if escrow.on_hold:
        raise Conflict(
            "The money for this order is held while staff check a payment the provider "
            "reported both captured and failed.",
            code=PaymentErrorCode.ESCROW_ON_HOLD,
        )
    if escrow.frozen:
        raise Conflict(
            "The money for this order is frozen while a dispute is open.",
            code=PaymentErrorCode.ESCROW_FROZEN,
        )


def _audience(escrow: Escrow) -> list[int]:
    return [escrow.buyer_organisation_id, escrow.supplier_organisation_id]


def _new_reference(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


# --- escrows ------------------------------------------------------------------------------
@transaction.atomic
def escrow_open(
    *,
    escrow_reference: str,
    currency: str,
    buyer_organisation,
    supplier_organisation,
    description: str,
) -> None:
    """Open the escrow an order's money will be held in (idempotent by reference)."""
    if currency not in MINOR_UNITS or currency not in settings.SUPPORTED_CURRENCIES:
        raise ValidationFailed(
            f"Unsupported currency {currency!r}.", code=PaymentErrorCode.UNSUPPORTED_CURRENCY
        )
    existing = Escrow.objects.select_for_update().filter(reference=escrow_reference).first()
    if existing is not None:
        if (
            existing.currency != currency
            or existing.buyer_organisation_id != buyer_organisation.pk
            or existing.supplier_organisation_id != supplier_organisation.pk
        ):
            raise Conflict(
                f"Escrow {escrow_reference} is already open with other parties or currency.",
                code=PaymentErrorCode.ESCROW_MISMATCH,
            )
        return
    try:
        with transaction.atomic():
            escrow = Escrow.objects.create(
                reference=escrow_reference,
                currency=currency,
                buyer_organisation=buyer_organisation,
                supplier_organisation=supplier_organisation,
                description=description[:200],
                bank_reference=f"TA-{secrets.token_hex(5).upper()}",
                created_at=clock.now(),
            )
    except IntegrityError:
        # Opened by a concurrent call in the meantime: same outcome.
        return escrow_open(
            escrow_reference=escrow_reference,
            currency=currency,
            buyer_organisation=buyer_organisation,
            supplier_organisation=supplier_organisation,
            description=description,
        )
    ledger.accounts_get(
        [
            ledger.AccountSpec(kind, currency, escrow=escrow)
            for kind in (Kind.ESCROW, Kind.INSPECTION_FEE_HELD, Kind.REFUNDS_IN_TRANSIT)
        ]
    )


@transaction.atomic
def escrow_freeze(*, escrow_reference: str) -> None:
    """Stop releases and refunds while a dispute is open (idempotent)."""
    _escrow_set_frozen(escrow_reference, frozen=True)


@transaction.atomic
def escrow_unfreeze(*, escrow_reference: str) -> None:
    _escrow_set_frozen(escrow_reference, frozen=False)


@transaction.atomic
def escrow_hold_lift(*, escrow_reference: str, actor) -> None:
    """Staff checked a charge the provider reported both captured and failed: money may leave
    the escrow again (a charge that really failed is then refunded or settled by staff)."""
    escrow = _escrow_lock(escrow_reference)
    if not escrow.on_hold:
        return
    Escrow.objects.filter(pk=escrow.pk).update(on_hold=False)
    logger.info("Hold on %s lifted by user %s.", escrow.reference, getattr(actor, "pk", None))


def _escrow_set_frozen(escrow_reference: str, *, frozen: bool) -> None:
    escrow = _escrow_lock(escrow_reference)
    if escrow.frozen == frozen:
        return
    Escrow.objects.filter(pk=escrow.pk).update(frozen=frozen)
    event_publish(
        topic=PaymentTopic.ESCROW_FROZEN if frozen else PaymentTopic.ESCROW_UNFROZEN,
        subject_type="escrow",
        subject_id=escrow.pk,
        audience=_audience(escrow),
        payload={"escrow_reference": escrow.reference},
    )


@transaction.atomic
def escrow_release(*, escrow_reference: str, amount: Decimal, idempotency_key: str) -> None:
    """Move held money to the supplier's payable, minus the release fee (to platform revenue).

    Anything the supplier owes (e.g. an inspection fee it was charged) is settled first.
    Everything but the posting happens before any account is locked; the fee account is
    credit-only and the payable only credited (neither is locked), so releases for different
    suppliers share no lock, and neither do releases for one supplier unless it owes a debt
    (`_release_locks`). The rule (the refusals and the legs) is `_release_posting`'s, shared
    with `escrows_release_many`.
    """
    escrow = _escrow_lock(escrow_reference)
    _check_amount(amount, escrow.currency)
    if _replayed(
        idempotency_key=idempotency_key, kind=TxKind.RELEASE, escrow=escrow, amount=amount
    ):
        return
    _refuse_if_frozen(escrow)
    specs = _release_specs(escrow)
    accounts = _ReleaseAccounts.of(escrow, ledger.accounts_get(specs, current=[specs[3]]))
    # The escrow's accounts only move under the escrow's row lock (held since _escrow_lock), so
    # this read is current; it is checked again under the account lock regardless.
    _refuse_more_than_held(accounts.escrow.current_balance, amount, escrow.currency, "release")
    event_publish(**asdict(_release_event(escrow, amount)))
    # Lock late: from here to the commit only the posting runs.
    locked = _release_locks(accounts.escrow, accounts.debt)
    posting = _release_posting(
        escrow,
        amount,
        idempotency_key=idempotency_key,
        accounts=accounts,
        held=locked[accounts.escrow.pk].current_balance,
        owed=-locked[accounts.debt.pk].current_balance if accounts.debt.pk in locked else ZERO,
    )
    ledger.ledger_post(
        idempotency_key=posting.idempotency_key,
        kind=posting.kind,
        amount=posting.amount,
        currency=posting.currency,
        legs=posting.legs,
        escrow=escrow,
        memo=posting.memo,
        locked=locked,
    )


# --- the release rule, for one escrow or a batch ----------------------------------------------
def _release_specs(escrow: Escrow) -> list[ledger.AccountSpec]:
    currency, org_id = escrow.currency, escrow.supplier_organisation_id
    return [
        ledger.AccountSpec(Kind.ESCROW, currency, escrow=escrow),
        ledger.AccountSpec(Kind.PLATFORM_FEES, currency),
        ledger.AccountSpec(Kind.SUPPLIER_PAYABLE, currency, organisation_id=org_id),
        ledger.AccountSpec(Kind.SUPPLIER_DEBT, currency, organisation_id=org_id),
    ]


@dataclass(frozen=True)
class _ReleaseAccounts:
    """The four accounts a release posts to (in `_release_specs`' order)."""

    escrow: Account
    fees: Account
    payable: Account
    debt: Account

    @classmethod
    def of(cls, escrow: Escrow, accounts: Sequence[Account]) -> "_ReleaseAccounts":
        assert len(accounts) == 4, escrow.reference
        return cls(*accounts)

    def bounded(self) -> list[Account]:
        return [self.escrow, self.payable, self.debt]


def _release_event(escrow: Escrow, amount: Decimal) -> EventSpec:
    return EventSpec(
        topic=PaymentTopic.ESCROW_RELEASED,
        subject_type="escrow",
        subject_id=escrow.pk,
        audience=tuple(_audience(escrow)),
        payload={
            "escrow_reference": escrow.reference,
            "amount": str(amount),
            "fee": str(release_fee(amount, escrow.currency)),
            "currency": escrow.currency,
        },
    )


def _release_posting(
    escrow: Escrow,
    amount: Decimal,
    *,
    idempotency_key: str,
    accounts: _ReleaseAccounts,
    held: Decimal,
    owed: Decimal,
) -> ledger.Posting:
    """The one release rule: refuse more than the escrow holds (`held`, its balance under the
    account lock), take the release fee to platform revenue, settle what the supplier owes
    (`owed`, its debt under the lock) from the rest first, and credit the remainder to its
    payable."""
    currency = escrow.currency
    _refuse_more_than_held(held, amount, currency, "release")
    fee = release_fee(amount, currency)
    net = amount - fee
    debt_settled = min(owed, net)
    legs = [
        (accounts.escrow, -amount),
        (accounts.fees, fee),
        (accounts.payable, net - debt_settled),
        (accounts.debt, debt_settled),
    ]
    return ledger.Posting(
        idempotency_key=idempotency_key,
        kind=TxKind.RELEASE,
        amount=amount,
        currency=currency,
        legs=[(account, value) for account, value in legs if value],
        escrow=escrow,
        memo=f"Release {format_money(amount, currency)}, fee {format_money(fee, currency)}",
    )


@dataclass(frozen=True)
class EscrowRelease:
    """One release of a batch: everything the escrow holds (`amount=None`) or that amount."""

    escrow_reference: str
    idempotency_key: str
    amount: Decimal | None = None


def escrows_release_many(*, releases: Sequence[EscrowRelease]) -> dict[str, Decimal | DomainError]:
    """`escrow_release` for a batch (the post-delivery sweep): every release posted with a
    constant number of statements, in the caller's transaction. Returns, by escrow reference,
    the amount released (0 when nothing is held, or none asked of an escrow not yet opened) or
    the refusal `escrow_release` would have raised for it; a refused escrow is left exactly as
    it was and the others go on.

    The escrows are locked here in key order (a sweep already holds them: its claim took them
    first, skipping any a person holds, so this waits for nobody), then their bounded accounts
    in id order, as `escrow_release` does. The same rule (`_release_posting`): an escrow on
    hold or frozen is refused, a key already used is a replay (nothing moves) or, for another
    operation, refused; more than held is refused, and so is an escrow whose cached balance
    does not equal its entries (the ledger is inconsistent: staff must look, nothing moves).
    What a supplier owes is settled from its first releases in the batch, in escrow order.
    Exactly once: each key is unique in the ledger, and a key someone else posted meanwhile
    fails the whole batch (the sweep then goes order by order through the per-order path)."""
    assert transaction.get_connection().in_atomic_block, (
        "escrows_release_many runs in a transaction"
    )
    outcome: dict[str, Decimal | DomainError] = {}
    asked = {release.escrow_reference: release for release in releases}
    if len(asked) != len(releases):
        raise ValueError("A batch releases each escrow at most once.")
    if not asked:
        return outcome
    escrows = list(
        Escrow.objects.select_for_update()
        .filter(reference__in=list(asked))
        .only(
            "pk",
            "reference",
            "currency",
            "buyer_organisation_id",
            "supplier_organisation_id",
            "frozen",
            "on_hold",
        )
        .order_by("pk")
    )
    found = {escrow.reference for escrow in escrows}
    for reference, release in asked.items():
        if reference not in found:
            outcome[reference] = (
                Decimal(0)
                if release.amount is None
                else NotFound(f"No escrow {reference!r}.", code=PaymentErrorCode.ESCROW_NOT_FOUND)
            )
    existing = {
        tx.idempotency_key: tx
        for tx in LedgerTransaction.objects.filter(
            idempotency_key__in=[asked[e.reference].idempotency_key for e in escrows]
        )
    }
    # The escrows' own accounts, locked (in id order) with the sum of their entries. Nobody
    # else locks them: they only move under their escrow's row lock, which this batch holds.
    own = {
        account.escrow_id: (account, entries)
        for account, entries in ledger.accounts_lock_with_sums(
            [_release_specs(escrow)[0].key for escrow in escrows]
        )
    }
    # First the refusals that need no other account (so a refused escrow opens nothing).
    going: list[tuple[Escrow, Decimal]] = []
    for escrow in escrows:
        release = asked[escrow.reference]
        account, entries = own.get(escrow.pk, (None, Decimal(0)))
        cached = account.balance if account else Decimal(0)
        try:
            amount, post = _release_amount(
                escrow, release, existing, cached=cached, entries=entries
            )
        except DomainError as error:
            outcome[escrow.reference] = error
            continue
        outcome[escrow.reference] = amount
        if post:
            going.append((escrow, amount))
    if not going:
        return outcome
    # Then the suppliers' accounts and the fee account (those missing opened at once), each
    # read once, and their bounded ones locked late, in id order, as escrow_release locks them
    # (a release of another escrow holds at most these, and waits for nothing this batch holds).
    shared = {spec.key: spec for escrow, _ in going for spec in _release_specs(escrow)[1:]}
    by_key = dict(zip(shared, ledger.accounts_get(list(shared.values())), strict=True))
    locked = ledger.accounts_lock(by_key.values())
    locked.update((account.pk, account) for account, _ in own.values())
    accounts = [
        _ReleaseAccounts(own[escrow.pk][0], *(by_key[s.key] for s in _release_specs(escrow)[1:]))
        for escrow, _ in going
    ]
    owed = {acc.debt.pk: -locked[acc.debt.pk].current_balance for acc in accounts}
    postings: list[ledger.Posting] = []
    for (escrow, amount), acc in zip(going, accounts, strict=True):
        posting = _release_posting(
            escrow,
            amount,
            idempotency_key=asked[escrow.reference].idempotency_key,
            accounts=acc,
            held=locked[acc.escrow.pk].current_balance,
            owed=owed[acc.debt.pk],
        )
        owed[acc.debt.pk] -= sum(
            (value for account, value in posting.legs if account == acc.debt), Decimal(0)
        )
        postings.append(posting)
    events_publish_many([_release_event(escrow, amount) for escrow, amount in going])
    ledger.ledger_post_many(postings, locked=locked)
    return outcome


def _release_amount(
    escrow: Escrow,
    release: EscrowRelease,
    existing: dict[str, LedgerTransaction],
    *,
    cached: Decimal,
    entries: Decimal,
) -> tuple[Decimal, bool]:
    """What a release of the batch releases and whether it posts (not when nothing is held, nor
    for a replay of its key), or the refusal `escrow_release` raises, in its order; `cached` is
    the escrow account's balance, `entries` the sum of its entries."""
    everything = release.amount is None
    amount = entries if release.amount is None else release.amount
    if everything and entries == 0 == cached:
        return Decimal(0), False
    if everything and cached > entries:
        raise _mismatch(escrow)
    _check_amount(amount, escrow.currency)
    _require_key(release.idempotency_key)
    if _is_replay(
        existing.get(release.idempotency_key), kind=TxKind.RELEASE, escrow=escrow, amount=amount
    ):
        return amount, False
    _refuse_if_frozen(escrow)
    _refuse_more_than_held(cached, amount, escrow.currency, "release")
    return amount, True


def _mismatch(escrow: Escrow) -> Conflict:
    return Conflict(
        f"The escrow balance of {escrow.reference} does not equal its entries; nothing was "
        "released.",
        code=PaymentErrorCode.ESCROW_MISMATCH,
    )


def _release_locks(escrow_account: Account, debt: Account) -> dict[int, Account]:
    """What a release must hold locked to post: only the accounts it could overdraw.

    The escrow's account moves only under the escrow's row lock, which the release holds, so
    the account read after it is current (and the entry trigger checks it again). The
    supplier's debt is locked, and read again, only if the supplier owed something when read
    without a lock: a debt charged meanwhile is settled by the next release, as if it had come
    a moment later. The payable is only credited, which on PostgreSQL takes no lock at all
    (payments.ledger), so one supplier's releases do not queue on its rows.
    """
    locked = {escrow_account.pk: escrow_account}
    if debt.current_balance:
        locked.update(ledger.accounts_lock([debt]))
    return locked


def _refuse_more_than_held(held: Decimal, amount: Decimal, currency: str, verb: str) -> None:
    if held < amount:
        raise Conflict(
            f"Only {format_money(held, currency)} is held; "
            f"cannot {verb} {format_money(amount, currency)}.",
            code=PaymentErrorCode.INSUFFICIENT_ESCROW,
        )


@transaction.atomic
def escrow_refund(
    *, escrow_reference: str, amount: Decimal, idempotency_key: str, reason: str
) -> None:
    """Send held money back to the buyer: out of escrow now, paid by the provider shortly."""
    escrow = _escrow_lock(escrow_reference)
    _check_amount(amount, escrow.currency)
    if _replayed(idempotency_key=idempotency_key, kind=TxKind.REFUND, escrow=escrow, amount=amount):
        return
    _refuse_if_frozen(escrow)
    currency = escrow.currency
    escrow_account, in_transit = ledger.accounts_get(
        [
            ledger.AccountSpec(Kind.ESCROW, currency, escrow=escrow),
            ledger.AccountSpec(Kind.REFUNDS_IN_TRANSIT, currency, escrow=escrow),
        ]
    )
    locked = ledger.accounts_lock([escrow_account, in_transit])
    _refuse_more_than_held(locked[escrow_account.pk].current_balance, amount, currency, "refund")
    ledger.ledger_post(
        idempotency_key=idempotency_key,
        kind=TxKind.REFUND,
        amount=amount,
        currency=currency,
        legs=[(escrow_account, -amount), (in_transit, amount)],
        escrow=escrow,
        memo=f"Refund: {reason}",
        locked=locked,
    )
    _refund_create(escrow=escrow, kind=Refund.Kind.ESCROW, amount=amount, reason=reason)


def _escrow_provider(escrow: Escrow) -> str:
    """The provider that took this escrow's money (refunds go back through it)."""
    provider = (
        Payment.objects.filter(escrow=escrow, status=Payment.Status.CAPTURED)
        .order_by("-id")
        .values_list("provider", flat=True)
        .first()
    )
    return provider or settings.PAYMENT_PROVIDER


def _refund_create(*, escrow: Escrow, kind: str, amount: Decimal, reason: str) -> Refund:
    refund = Refund.objects.create(
        escrow=escrow,
        kind=kind,
        amount=amount,
        currency=escrow.currency,
        reason=reason[:300],
        provider=_escrow_provider(escrow),
        provider_reference=_new_reference("ta_rf"),
        created_at=clock.now(),
    )
    event_publish(
        topic=PaymentTopic.ESCROW_REFUNDED,
        subject_type="escrow",
        subject_id=escrow.pk,
        audience=_audience(escrow),
        payload={
            "escrow_reference": escrow.reference,
            "amount": str(amount),
            "currency": escrow.currency,
            "kind": kind,
            "reason": reason,
        },
    )
    _after_commit_send_refund(refund)
    return refund


def _after_commit_send_refund(refund: Refund) -> None:
    from payments.tasks import provider_refund_request

    transaction.on_commit(lambda: _enqueue(provider_refund_request, refund.pk))


def _enqueue(task, object_id: int) -> None:
    try:
        task.delay(object_id)
    except Exception:  # broker down: the resend sweep picks it up
        logger.warning("Could not queue %s(%s); the sweep will resend it.", task.name, object_id)


@transaction.atomic
def inspection_fee_settle(
    *,
    escrow_reference: str,
    supplier_at_fault: bool,
    idempotency_key: str,
    amount: Decimal | None = None,
) -> None:
    """Settle the buyer's inspection fee once the inspection decided who was at fault.

    Supplier at fault: the buyer gets the fee back and the supplier's payable is charged (what it
    cannot cover becomes a debt taken from its next release). Otherwise the fee pays the inspector.
    `amount` settles that one fee (an order may hold two: its pre-shipment inspection's and a
    dispute's); without it, everything held. Never more than is held.
    """
    escrow = _escrow_lock(escrow_reference)
    if _replayed(idempotency_key=idempotency_key, kind=TxKind.INSPECTION_FEE_SETTLE, escrow=escrow):
        return
    currency = escrow.currency
    org_id = escrow.supplier_organisation_id
    held = ledger.account_get(kind=Kind.INSPECTION_FEE_HELD, currency=currency, escrow=escrow)
    earned = ledger.account_get(kind=Kind.INSPECTION_FEES_EARNED, currency=currency)
    accounts = [held, earned]
    if supplier_at_fault:
        in_transit = ledger.account_get(
            kind=Kind.REFUNDS_IN_TRANSIT, currency=currency, escrow=escrow
        )
        payable = ledger.account_get(
            kind=Kind.SUPPLIER_PAYABLE, currency=currency, organisation_id=org_id
        )
        debt = ledger.account_get(
            kind=Kind.SUPPLIER_DEBT, currency=currency, organisation_id=org_id
        )
        accounts += [in_transit, payable, debt]
    locked = ledger.accounts_lock(accounts)
    fee = locked[held.pk].current_balance if amount is None else amount
    if fee <= 0 or fee > locked[held.pk].current_balance:
        raise Conflict(
            "No inspection fee is held for this order.", code=PaymentErrorCode.INSUFFICIENT_ESCROW
        )
    legs = [(held, -fee), (earned, fee)]
    if supplier_at_fault:
        from_payable = min(locked[payable.pk].current_balance, fee)
        legs += [(in_transit, fee), (payable, -from_payable), (debt, -(fee - from_payable))]
    ledger.ledger_post(
        idempotency_key=idempotency_key,
        kind=TxKind.INSPECTION_FEE_SETTLE,
        amount=fee,
        currency=currency,
        legs=[(account, value) for account, value in legs if value],
        escrow=escrow,
        memo="Inspection fee: supplier at fault" if supplier_at_fault else "Inspection fee paid",
        locked=locked,
    )
    if supplier_at_fault:
        _refund_create(
            escrow=escrow,
            kind=Refund.Kind.INSPECTION_FEE,
            amount=fee,
            reason="Inspection fee refunded: the supplier was at fault.",
        )


@transaction.atomic
def inspection_fee_return(
    *, escrow_reference: str, amount: Decimal, idempotency_key: str, reason: str
) -> None:
    """Give a held inspection fee back to the buyer when no inspection took place (the order
    ended or shipped first): nobody is charged and the inspector is not paid. Never more than
    is held; a replayed key moves nothing."""
    escrow = _escrow_lock(escrow_reference)
    _check_amount(amount, escrow.currency)
    if _replayed(
        idempotency_key=idempotency_key,
        kind=TxKind.INSPECTION_FEE_SETTLE,
        escrow=escrow,
        amount=amount,
    ):
        return
    currency = escrow.currency
    held, in_transit = ledger.accounts_get(
        [
            ledger.AccountSpec(Kind.INSPECTION_FEE_HELD, currency, escrow=escrow),
            ledger.AccountSpec(Kind.REFUNDS_IN_TRANSIT, currency, escrow=escrow),
        ]
    )
    locked = ledger.accounts_lock([held, in_transit])
    _refuse_more_than_held(locked[held.pk].balance, amount, currency, "return")
    ledger.ledger_post(
        idempotency_key=idempotency_key,
        kind=TxKind.INSPECTION_FEE_SETTLE,
        amount=amount,
        currency=currency,
        legs=[(held, -amount), (in_transit, amount)],
        escrow=escrow,
        memo=f"Inspection fee returned: {reason}"[:200],
        locked=locked,
    )
    _refund_create(escrow=escrow, kind=Refund.Kind.INSPECTION_FEE, amount=amount, reason=reason)


# --- payments -----------------------------------------------------------------------------
@transaction.atomic
def payment_start(
    *,
    escrow_reference: str,
    purpose: str,
    amount: Decimal,
    currency: str,
    method: str,
    payer_organisation,
    idempotency_key: str,
    return_url: str = "",
) -> Payment:
    """Start a payment into an escrow; the buyer completes it on `payment.get_absolute_url()`."""
    escrow = _escrow_lock(escrow_reference)
    if not idempotency_key:
        raise ValidationFailed(
            "An idempotency key is required.", code=PaymentErrorCode.IDEMPOTENCY_KEY_MISSING
        )
    existing = Payment.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        if (
            existing.escrow_id != escrow.pk
            or existing.purpose != purpose
            or existing.amount != amount
            or existing.currency != currency
            or existing.method != method
        ):
            raise Unprocessable(
                "This idempotency key was already used for a different payment.",
                code=PlatformErrorCode.IDEMPOTENCY_KEY_REUSED,
            )
        return existing
    if purpose not in Payment.Purpose.values:
        raise ValidationFailed(
            f"Unknown payment purpose {purpose!r}.", code=PaymentErrorCode.INVALID_PURPOSE
        )
    if method not in Payment.Method.values:
        raise ValidationFailed(
            f"Unknown payment method {method!r}.", code=PaymentErrorCode.INVALID_METHOD
        )
    if currency != escrow.currency:
        raise Unprocessable(
            f"This order is paid in {escrow.currency}, not {currency}.",
            code=PaymentErrorCode.CURRENCY_MISMATCH,
        )
    _check_amount(amount, currency)
    if payer_organisation is None or payer_organisation.pk != escrow.buyer_organisation_id:
        raise NotAllowed(
            "Only the buyer of this order pays into its escrow.", code=PaymentErrorCode.NOT_PAYER
        )
    if return_url and not return_url.startswith("/"):
        raise ValidationFailed(
            "The return URL must be a path on this site.", code=PaymentErrorCode.INVALID_URL
        )
    provider = provider_get()
    payment = Payment(
        escrow=escrow,
        purpose=purpose,
        amount=amount,
        currency=currency,
        method=method,
        payer_organisation=payer_organisation,
        idempotency_key=idempotency_key,
        return_url=return_url[:500],
        provider=provider.name,
        created_at=clock.now(),
    )
    created = provider.create_payment(payment=payment)
    payment.provider_reference = created.reference
    payment.instructions = created.instructions
    payment.save()
    return payment


def payment_instructions(*, payment: Payment) -> dict[str, str]:
    """Bank transfer instructions for a T/T payment, as the provider gave them at the start."""
    return dict(payment.instructions) if payment.method == Payment.Method.BANK_TRANSFER else {}


@dataclass(frozen=True)
class CardSubmission:
    """What a card submission did: `replayed` when this attempt had already been taken."""

    attempt: str
    replayed: bool
    status: str
    provider_status: str = ""


def _card_attempt_claim(
    *, payment: Payment, attempt: str, actor, check_provider, check_input
) -> tuple[Payment, bool]:
    """The card submission's compare-and-set, under the payment's row lock.

    PENDING/FAILED -> SUBMITTED with the attempt recorded, so exactly one card reaches the
    provider per payment however many submissions race. A replay of the recorded attempt
    returns (payment, True) and charges nothing; another attempt while one is with the provider
    is refused with 409 `payment_already_submitted`, and after the capture with `already_paid`.
    """
    payment = Payment.objects.select_for_update().get(pk=payment.pk)
    if actor is None or actor.organisation_id != payment.payer_organisation_id:
        raise NotFound("No such payment.", code=PaymentErrorCode.PAYMENT_NOT_FOUND)
    team_require(actor, Capability.PAY)
    if payment.method != Payment.Method.CARD:
        raise Conflict("This payment is made by bank transfer.", code=PaymentErrorCode.WRONG_METHOD)
    if attempt and payment.card_attempt == attempt:
        return payment, True
    if payment.status == Payment.Status.CAPTURED:
        raise Conflict("This payment has already been made.", code=PaymentErrorCode.ALREADY_PAID)
    if payment.status == Payment.Status.SUBMITTED:
        raise Conflict(
            "A card was already submitted for this payment and is being processed; "
            "wait for its outcome.",
            code=PaymentErrorCode.PAYMENT_ALREADY_SUBMITTED,
        )
    check_provider(payment)
    check_input()
    now = clock.now()
    claimed = Payment.objects.filter(pk=payment.pk, status__in=Payment.CARD_SUBMITTABLE).update(
        status=Payment.Status.SUBMITTED, card_attempt=attempt, submitted_at=now, failure_reason=""
    )
    if claimed != 1:  # cannot happen under the row lock; refuse rather than charge twice
        raise Conflict(
            "A card was already submitted for this payment.",
            code=PaymentErrorCode.PAYMENT_ALREADY_SUBMITTED,
        )
    payment.status, payment.card_attempt, payment.submitted_at = (
        Payment.Status.SUBMITTED,
        attempt,
        now,
    )
    payment.failure_reason = ""
    return payment, False


def _card_attempt_release(*, payment_id: int, attempt: str, failure_reason: str) -> None:
    """The provider never got (or refused) this attempt: the payment takes a new card."""
    Payment.objects.filter(
        pk=payment_id, status=Payment.Status.SUBMITTED, card_attempt=attempt
    ).update(status=Payment.Status.FAILED, failure_reason=failure_reason[:200])


def payment_card_submit(
    *, payment: Payment, card_number: str, actor, attempt: str = ""
) -> CardSubmission:
    """Charge a card for a pending (or declined) payment, once; the outcome arrives by webhook.

    `attempt` identifies this submission (the API's Idempotency-Key, the card form's hidden
    key); without one, each call is a new attempt. See `_card_attempt_claim`.
    """
    attempt = attempt or f"card:{uuid.uuid4()}"
    number = "".join(card_number.split())

    def check_provider(locked: Payment) -> None:
        if locked.provider != "sandbox":
            raise Conflict(
                "Card numbers are taken by the payment provider's own card form on this page.",
                code=PaymentErrorCode.WRONG_PROVIDER,
            )

    def check_input() -> None:
        from payments.providers.sandbox import luhn_valid

        if not luhn_valid(number):
            raise ValidationFailed(
                "That card number is not valid.",
                code=PaymentErrorCode.INVALID_CARD,
                fields={"card_number": ["invalid"]},
            )

    with transaction.atomic():
        payment, replayed = _card_attempt_claim(
            payment=payment,
            attempt=attempt,
            actor=actor,
            check_provider=check_provider,
            check_input=check_input,
        )
        if not replayed:
            # Cards are charged on the provider's hosted page; only adapters that host one
            # (the sandbox) are configured for card payments, which the Protocol cannot know.
            provider = cast(CardConfirmingProvider, provider_get(payment.provider))
            claimed = payment
            transaction.on_commit(lambda: _card_hand_over(provider, claimed, number))
    return CardSubmission(attempt=attempt, replayed=replayed, status=payment.status)


def _card_hand_over(provider: CardConfirmingProvider, payment: Payment, number: str) -> None:
    """After the claim committed: give the card to the provider. If it cannot take it (e.g.
    its queue is down), the attempt is released as failed, so the buyer may try again."""
    try:
        provider.confirm_card(payment=payment, card_number=number)
    except Exception:
        logger.exception("Card for payment %s not handed to the provider.", payment.pk)
        _card_attempt_release(
            payment_id=payment.pk,
            attempt=payment.card_attempt,
            failure_reason="The card could not be sent to the payment provider; nothing was "
            "charged. Please try again.",
        )


def payment_card_confirm(
    *, payment: Payment, payment_method: str, actor, attempt: str = ""
) -> CardSubmission:
    """Confirm a card payment with a payment method the provider's own script or SDK created
    (Stripe: a `pm_…` id), once per payment (the same claim as `payment_card_submit`).

    Raises PaymentDeclined (402) on a decline (the payment takes another card) and
    ProviderUnavailable (503); records no money: the provider's webhook does. Returns the
    provider's status for the payment (empty for a replay of the same attempt).
    """
    attempt = attempt or f"confirm:{uuid.uuid4()}"
    payment_method = (payment_method or "").strip()
    provider = provider_get(payment.provider)

    def check_provider(locked: Payment) -> None:
        if locked.provider == "sandbox" or not isinstance(provider, BrowserCardProvider):
            raise Conflict(
                "This payment takes sandbox test cards (sandbox-card).",
                code=PaymentErrorCode.WRONG_PROVIDER,
            )

    def check_input() -> None:
        if not payment_method.startswith("pm_") or len(payment_method) > 100:
            raise ValidationFailed(
                "Give the id of a payment method created with the provider (pm_…).",
                code=PaymentErrorCode.INVALID_PAYMENT_METHOD,
                fields={"payment_method": ["invalid"]},
            )

    with transaction.atomic():
        payment, replayed = _card_attempt_claim(
            payment=payment,
            attempt=attempt,
            actor=actor,
            check_provider=check_provider,
            check_input=check_input,
        )
    if replayed:
        return CardSubmission(attempt=attempt, replayed=True, status=payment.status)
    browser = cast(BrowserCardProvider, provider)
    try:
        provider_status = browser.confirm_card(payment=payment, payment_method=payment_method)
    except PaymentDeclined as error:
        _card_attempt_release(payment_id=payment.pk, attempt=attempt, failure_reason=error.message)
        raise
    except Exception:
        _card_attempt_release(
            payment_id=payment.pk,
            attempt=attempt,
            failure_reason="The payment provider could not be reached; nothing was charged.",
        )
        raise
    if provider_status in ("requires_payment_method", "canceled"):
        # The provider took no money with this method: the payment takes another card.
        _card_attempt_release(
            payment_id=payment.pk,
            attempt=attempt,
            failure_reason="The card was not accepted; try another card.",
        )
        return CardSubmission(
            attempt=attempt,
            replayed=False,
            status=Payment.Status.FAILED,
            provider_status=provider_status,
        )
    return CardSubmission(
        attempt=attempt,
        replayed=False,
        status=Payment.Status.SUBMITTED,
        provider_status=provider_status,
    )


@transaction.atomic
def payment_transfer_simulate(*, payment: Payment, amount: Decimal, currency: str, actor) -> None:
    """Sandbox only: make the buyer's bank transfer "arrive" (any amount/currency, to test)."""
    payment = Payment.objects.select_for_update().get(pk=payment.pk)
    if actor is None or actor.organisation_id != payment.payer_organisation_id:
        raise NotFound("No such payment.", code=PaymentErrorCode.PAYMENT_NOT_FOUND)
    team_require(actor, Capability.PAY)
    if payment.method != Payment.Method.BANK_TRANSFER:
        raise Conflict("This payment is made by card.", code=PaymentErrorCode.WRONG_METHOD)
    provider = provider_get(payment.provider)
    if not hasattr(provider, "transfer_arrive"):
        raise Conflict(
            "Only the sandbox provider can simulate transfers.", code=PaymentErrorCode.NOT_SANDBOX
        )
    if currency not in MINOR_UNITS:
        raise ValidationFailed(
            f"Unsupported currency {currency!r}.", code=PaymentErrorCode.UNSUPPORTED_CURRENCY
        )
    _check_amount(amount, currency)
    transaction.on_commit(
        lambda: provider.transfer_arrive(payment=payment, amount=amount, currency=currency)
    )


def _payment_with_escrow_locked(*, provider: str, reference: str) -> Payment | None:
    """The payment a provider event is about, with its escrow's row locked, in one statement
    (escrow first, then the payment: the order every money path takes). The payment comes back
    as a stub (id, provider, reference, the locked escrow): its handler locks and reads it."""
    escrow = (
        Escrow.objects.select_for_update(of=("self",))
        .filter(payments__provider=provider, payments__provider_reference=reference)
        .annotate(payment_pk=F("payments__id"))
        .first()
    )
    if escrow is None:
        return None
    return Payment(
        pk=cast(Any, escrow).payment_pk,
        provider=provider,
        provider_reference=reference,
        escrow=escrow,
    )


def _payment_captured(
    *, payment: Payment, data: ProviderEventData, event: ProviderEvent
) -> tuple[str, str]:
    """Money arrived for a payment: into escrow if it matches, otherwise held and returned.
    `payment` is `_payment_with_escrow_locked`'s stub: its escrow is locked."""
    escrow = payment.escrow
    charge_key = f"capture:{payment.provider}:{data.charge_id or data.event_id}"
    payment, charge_recorded, charge_failed = _payment_lock_with_charge_state(
        payment=payment, charge_key=charge_key, charge_id=data.charge_id, event=event
    )
    payment.escrow = escrow
    if charge_recorded:
        return IGNORED, "This charge was already recorded."
    currency = data.currency or ""
    amount = data.amount
    problem = ""
    if currency not in MINOR_UNITS or currency not in settings.SUPPORTED_CURRENCIES:
        return UNMATCHED, f"Unsupported currency {currency!r}; staff must return it manually."
    if amount is None or not is_exact(amount, currency):
        return (
            UNMATCHED,
            f"Amount {amount!r} is not valid in {currency}; staff must return it manually.",
        )
    if charge_failed:
        # The provider already said this very charge failed: hold the money, apply nothing.
        held = _hold(
            key=charge_key,
            amount=amount,
            currency=currency,
            source=ledger.account_get(kind=Kind.PROVIDER_CLEARING, currency=currency),
            escrow=escrow,
            event=event,
            memo=f"Charge {data.charge_id} of payment {payment.provider_reference} reported "
            "captured after it was reported failed",
        )
        return _contradiction(
            event=event,
            what=f"Payment {payment.provider_reference} ({escrow.reference})",
            detail=f"charge {data.charge_id} was reported failed, now captured "
            f"({format_money(amount, currency)}). The money is held for review (account "
            f"{held.key}); the payment stays {payment.status}.",
        )
    if payment.status == Payment.Status.CAPTURED:
        problem = "The payment had already been made."
    elif currency != payment.currency:
        problem = f"Paid in {currency}, expected {payment.currency}."
    elif amount != payment.amount:
        problem = f"Paid {format_money(amount, currency)}, expected {format_money(payment.amount, currency)}."
    if problem:
        _unapplied_hold(
            payment=payment,
            amount=amount,
            currency=currency,
            reason=problem,
            key=charge_key,
            event=event,
        )
        return APPLIED, f"Held for return: {problem}"

    target_kind = (
        Kind.INSPECTION_FEE_HELD
        if payment.purpose in Payment.INSPECTION_FEE_PURPOSES
        else Kind.ESCROW
    )
    clearing, target = ledger.accounts_get(
        [
            ledger.AccountSpec(Kind.PROVIDER_CLEARING, currency),
            ledger.AccountSpec(target_kind, currency, escrow=escrow),
        ]
    )
    ledger.ledger_post(
        idempotency_key=charge_key,
        kind=TxKind.INSPECTION_FEE_CAPTURE
        if target_kind == Kind.INSPECTION_FEE_HELD
        else TxKind.CAPTURE,
        amount=amount,
        currency=currency,
        legs=[(clearing, -amount), (target, amount)],
        escrow=escrow,
        provider_event=event,
        memo=f"{payment.get_purpose_display()} captured ({payment.get_method_display()})",
    )
    now = clock.now()
    Payment.objects.filter(pk=payment.pk).update(
        status=Payment.Status.CAPTURED, captured_at=now, failure_reason=""
    )
    payment.status = Payment.Status.CAPTURED
    payment.captured_at = now
    event_publish(
        topic=PaymentTopic.PAYMENT_CAPTURED,
        subject_type="payment",
        subject_id=payment.pk,
        audience=_audience(escrow),
        payload={
            "escrow_reference": escrow.reference,
            "purpose": payment.purpose,
            "amount": str(amount),
            "currency": currency,
        },
    )
    for hook_path in settings.PAYMENT_CAPTURED_HOOKS:
        import_string(hook_path)(payment=payment)
    return APPLIED, "Captured."


def _payment_lock_with_charge_state(
    *, payment: Payment, charge_key: str, charge_id: str, event: ProviderEvent
) -> tuple[Payment, bool, bool]:
    """Lock the payment (its escrow is locked already) and read, in the same statement,
    whether this charge was already recorded and whether the provider already reported it
    failed: (payment, recorded, failed).

    The statement starts after the escrow's lock was granted, and every transaction that
    records a capture or applies a failure of this payment holds that lock until it commits,
    so what it reads is current even if it then waits for the payment's row (a card
    submission). A capture recorded twice would still be refused by the ledger's unique
    idempotency key."""
    failed: Exists | Value = Value(False)
    if charge_id:
        failed = Exists(
            ProviderEvent.objects.filter(
                provider=payment.provider,
                object_reference=payment.provider_reference,
                type="payment.failed",
                charge_id=charge_id,
                status=APPLIED,
            ).exclude(pk=event.pk)
        )
    locked = (
        Payment.objects.select_for_update()
        .annotate(
            charge_recorded=Exists(LedgerTransaction.objects.filter(idempotency_key=charge_key)),
            charge_failed=failed,
        )
        .get(pk=payment.pk)
    )
    flags = cast(Any, locked)  # the two annotations above
    return locked, bool(flags.charge_recorded), bool(flags.charge_failed)


def _order_name(escrow: Escrow) -> str:
    """How a person knows the order: its description ("TA-000029 — 200 speakers…"), cut short."""
    name = (escrow.description or "your order").split(" — ")[0]
    return name[:60]


def _unapplied_hold(
    *, payment: Payment, amount: Decimal, currency: str, reason: str, key: str, event: ProviderEvent
) -> None:
    clearing, unapplied = ledger.accounts_get(
        [
            ledger.AccountSpec(Kind.PROVIDER_CLEARING, currency),
            ledger.AccountSpec(Kind.UNAPPLIED_FUNDS, currency),
        ]
    )
    ledger.ledger_post(
        idempotency_key=key,
        kind=TxKind.UNAPPLIED_RECEIVED,
        amount=amount,
        currency=currency,
        legs=[(clearing, -amount), (unapplied, amount)],
        escrow=payment.escrow,
        provider_event=event,
        memo=f"Not applied: {reason}",
    )
    refund = Refund.objects.create(
        escrow=payment.escrow,
        kind=Refund.Kind.UNAPPLIED_RETURN,
        amount=amount,
        currency=currency,
        reason=f"Returned: {reason}",
        provider=payment.provider,
        provider_reference=_new_reference("ta_rt"),
        created_at=clock.now(),
    )
    UnappliedTransfer.objects.create(
        payment=payment,
        amount=amount,
        currency=currency,
        reason=reason,
        refund=refund,
        created_at=clock.now(),
    )
    notify(
        users=payment.payer_organisation.members.filter(is_api_service=False),
        title=f"{_order_name(payment.escrow)}: a transfer did not match your payment and is "
        "being returned",
        body=f"{format_money(amount, currency)} for {_order_name(payment.escrow)} "
        f"({payment.get_purpose_display().lower()}, transfer reference "
        f"{payment.escrow.bank_reference}): {reason}",
        url=payment.get_absolute_url(),
    )
    _after_commit_send_refund(refund)


def _payment_failed(
    *, payment: Payment, data: ProviderEventData, event: ProviderEvent
) -> tuple[str, str]:
    escrow = payment.escrow  # locked by _payment_with_escrow_locked
    payment = Payment.objects.select_for_update().get(pk=payment.pk)
    payment.escrow = escrow
    if (
        data.charge_id
        and LedgerTransaction.objects.filter(
            idempotency_key=f"capture:{payment.provider}:{data.charge_id}"
        ).exists()
    ):
        # This very charge was recorded as captured: the money may not be there. Nothing
        # leaves the escrow until staff have checked with the provider.
        Escrow.objects.filter(pk=escrow.pk).update(on_hold=True)
        return _contradiction(
            event=event,
            what=f"Payment {payment.provider_reference} ({escrow.reference})",
            detail=f"charge {data.charge_id} was captured, now reported failed "
            f"({data.reason or 'no reason'}). The escrow is on hold: no release or refund "
            "until staff lift it.",
        )
    if Payment.Status.FAILED not in Payment.TRANSITIONS[payment.status]:
        return IGNORED, f"Stale: the payment is already {payment.status}."
    Payment.objects.filter(pk=payment.pk).update(
        status=Payment.Status.FAILED, failure_reason=data.reason[:200] or "Declined."
    )
    return APPLIED, "Marked failed."


# --- refunds and payouts at the provider ------------------------------------------------------
def refund_send_to_provider(*, refund_id: int) -> None:
    """Ask the provider to pay a refund (safe to repeat: the provider dedupes by reference)."""
    refund = Refund.objects.select_related("escrow").filter(pk=refund_id).first()
    if refund is None or refund.status in (
        Refund.Status.COMPLETED,
        Refund.Status.FAILED,
        Refund.Status.NEEDS_REVIEW,
    ):
        return
    answer = provider_get(refund.provider).refund(refund=refund)
    if answer is not None:
        # The provider's API answered with the refund's status: applied once, like a webhook.
        _provider_event_store_once(provider=refund.provider, data=answer)


def payout_send_to_provider(*, payout_id: int) -> None:
    payout = Payout.objects.filter(pk=payout_id).first()
    if payout is None or payout.status in (
        Payout.Status.PAID,
        Payout.Status.FAILED,
        Payout.Status.NEEDS_REVIEW,
    ):
        return
    provider_get(payout.provider).payout(payout=payout)


def provider_requests_resend_stuck(*, older_than_seconds: int = 300) -> int:
    """Resend refunds and payouts the provider never acknowledged (e.g. the broker was down)."""
    from datetime import timedelta

    cutoff = clock.now() - timedelta(seconds=older_than_seconds)
    count = 0
    for refund_id in Refund.objects.filter(
        status=Refund.Status.REQUESTED, created_at__lt=cutoff
    ).values_list("pk", flat=True)[:200]:
        refund_send_to_provider(refund_id=refund_id)
        count += 1
    # Providers whose refunds are read back from their API are asked again until final.
    polling = [
        name for name in _provider_names() if getattr(_adapter(name), "polls_refund_status", False)
    ]
    for refund_id in Refund.objects.filter(
        provider__in=polling, status=Refund.Status.PROCESSING, created_at__lt=cutoff
    ).values_list("pk", flat=True)[:200]:
        refund_send_to_provider(refund_id=refund_id)
        count += 1
    for payout_id in (
        Payout.objects.filter(status=Payout.Status.REQUESTED, created_at__lt=cutoff)
        .exclude(provider="manual")
        .values_list("pk", flat=True)[:200]
    ):
        payout_send_to_provider(payout_id=payout_id)
        count += 1
    return count


def _provider_names() -> list[str]:
    from payments.providers import PROVIDERS

    return [*PROVIDERS, *getattr(settings, "PAYMENT_PROVIDER_ADAPTERS", {})]


def _adapter(name: str):
    try:
        return provider_get(name)
    except (LookupError, ImportError):
        return None


def _refund_event(
    *, refund: Refund, data: ProviderEventData, event: ProviderEvent
) -> tuple[str, str]:
    # Escrow row first, as every other operation on this escrow does (no lock-order cycles).
    _escrow_lock(refund.escrow.reference)
    refund = Refund.objects.select_for_update().select_related("escrow").get(pk=refund.pk)
    target = {
        "refund.created": Refund.Status.PROCESSING,
        "refund.completed": Refund.Status.COMPLETED,
        "refund.failed": Refund.Status.FAILED,
    }[data.type]
    what = f"Refund {refund.provider_reference} ({refund.escrow.reference})"
    if refund.status == Refund.Status.NEEDS_REVIEW:
        return _contradiction(
            event=event, what=what, detail=f"{data.type} arrived while it is under review."
        )
    if Refund.RANK[target] == Refund.RANK[refund.status] == 2 and target != refund.status:
        return _refund_contradicted(refund=refund, data=data, event=event, what=what)
    if Refund.RANK[target] <= Refund.RANK[refund.status]:
        return IGNORED, f"Stale: the refund is already {refund.status}."
    if target == Refund.Status.COMPLETED:
        if refund.kind == Refund.Kind.UNAPPLIED_RETURN:
            source = ledger.account_get(kind=Kind.UNAPPLIED_FUNDS, currency=refund.currency)
        else:
            source = ledger.account_get(
                kind=Kind.REFUNDS_IN_TRANSIT, currency=refund.currency, escrow=refund.escrow
            )
        clearing = ledger.account_get(kind=Kind.PROVIDER_CLEARING, currency=refund.currency)
        ledger.ledger_post(
            idempotency_key=f"refund:{refund.pk}:completed",
            kind=TxKind.UNAPPLIED_RETURN
            if refund.kind == Refund.Kind.UNAPPLIED_RETURN
            else TxKind.REFUND_COMPLETED,
            amount=refund.amount,
            currency=refund.currency,
            legs=[(source, -refund.amount), (clearing, refund.amount)],
            escrow=refund.escrow,
            provider_event=event,
            memo=f"Refund {refund.provider_reference} paid by the provider",
        )
    Refund.objects.filter(pk=refund.pk).update(
        status=target, completed_at=clock.now() if Refund.RANK[target] == 2 else None
    )
    if target == Refund.Status.FAILED:
        SystemAlert.objects.create(
            source="payments",
            message=(
                f"Refund {refund.provider_reference} ({refund.currency} {refund.amount}) for "
                f"{refund.escrow.reference} failed at the provider: {data.reason or 'no reason'}. "
                "The money is still owed to the buyer (refunds in transit)."
            ),
            created_at=clock.now(),
        )
    return APPLIED, f"Refund {target}."


def _payout_event(
    *, payout: Payout, data: ProviderEventData, event: ProviderEvent
) -> tuple[str, str]:
    payout = Payout.objects.select_for_update().get(pk=payout.pk)
    target = {
        "payout.created": Payout.Status.PROCESSING,
        "payout.paid": Payout.Status.PAID,
        "payout.failed": Payout.Status.FAILED,
    }[data.type]
    what = f"Payout {payout.provider_reference} (organisation #{payout.organisation_id})"
    if payout.status == Payout.Status.NEEDS_REVIEW:
        return _contradiction(
            event=event, what=what, detail=f"{data.type} arrived while it is under review."
        )
    if Payout.RANK[target] == Payout.RANK[payout.status] == 2 and target != payout.status:
        return _payout_contradicted(payout=payout, data=data, event=event, what=what)
    if Payout.RANK[target] <= Payout.RANK[payout.status]:
        return IGNORED, f"Stale: the payout is already {payout.status}."
    in_transit = ledger.account_get(
        kind=Kind.PAYOUTS_IN_TRANSIT,
        currency=payout.currency,
        organisation_id=payout.organisation_id,
    )
    if target == Payout.Status.PAID:
        clearing = ledger.account_get(kind=Kind.PROVIDER_CLEARING, currency=payout.currency)
        ledger.ledger_post(
            idempotency_key=f"payout:{payout.pk}:paid",
            kind=TxKind.PAYOUT_COMPLETED,
            amount=payout.amount,
            currency=payout.currency,
            legs=[(in_transit, -payout.amount), (clearing, payout.amount)],
            provider_event=event,
            memo=f"Payout {payout.provider_reference} paid",
        )
    elif target == Payout.Status.FAILED:
        payable = ledger.account_get(
            kind=Kind.SUPPLIER_PAYABLE,
            currency=payout.currency,
            organisation_id=payout.organisation_id,
        )
        ledger.ledger_post(
            idempotency_key=f"payout:{payout.pk}:failed",
            kind=TxKind.PAYOUT_FAILED,
            amount=payout.amount,
            currency=payout.currency,
            legs=[(in_transit, -payout.amount), (payable, payout.amount)],
            provider_event=event,
            memo=f"Payout {payout.provider_reference} failed: {data.reason}",
        )
    Payout.objects.filter(pk=payout.pk).update(
        status=target,
        failure_reason=data.reason[:200] if target == Payout.Status.FAILED else "",
        completed_at=clock.now() if Payout.RANK[target] == 2 else None,
    )
    if Payout.RANK[target] == 2:
        notify(
            users=payout.organisation.members.filter(is_api_service=False),
            title=f"Payout {'paid' if target == Payout.Status.PAID else 'failed'}: "
            f"{format_money(payout.amount, payout.currency)}",
            body=data.reason if target == Payout.Status.FAILED else "",
            url="/payments/money/",
        )
    return APPLIED, f"Payout {target}."


# --- provider reports that contradict each other ---------------------------------------------
def _contradiction(*, event: ProviderEvent, what: str, detail: str) -> tuple[str, str]:
    """A provider event that contradicts one already applied: a staff alert, never dropped."""
    SystemAlert.objects.create(
        source="payments",
        message=(
            f"{what}: the provider's reports disagree — {detail} Event "
            f"{event.provider}:{event.event_id} ({event.type}) was not applied. Check with the "
            "provider before anything is paid again (payouts under review are settled in the "
            "admin: Payouts, 'Settle a payout under review'; escrows on hold: 'Lift the hold')."
        ),
        created_at=clock.now(),
    )
    return HELD, f"Contradicts an applied event: {detail}"[:200]


def _hold(
    *,
    key: str,
    amount: Decimal,
    currency: str,
    source: Account,
    escrow: Escrow | None = None,
    organisation_id: int | None = None,
    event: ProviderEvent | None = None,
    memo: str,
    sources: list[tuple[Account, Decimal]] | None = None,
) -> Account:
    """Move `amount` into the held-for-review account (out of reach of payouts and refunds),
    from `source` (or split over `sources`)."""
    held = ledger.account_get(
        kind=Kind.HELD_FOR_REVIEW, currency=currency, escrow=escrow, organisation_id=organisation_id
    )
    taken = sources if sources is not None else [(source, amount)]
    legs = [*((account, -value) for account, value in taken), (held, amount)]
    ledger.ledger_post(
        idempotency_key=key,
        kind=TxKind.HELD_FOR_REVIEW,
        amount=amount,
        currency=currency,
        legs=[(account, value) for account, value in legs if value],
        escrow=escrow,
        provider_event=event,
        memo=memo,
    )
    return held


def _refund_contradicted(
    *, refund: Refund, data: ProviderEventData, event: ProviderEvent, what: str
) -> tuple[str, str]:
    if data.type == "refund.completed":
        # Reported failed (the money stayed owed to the buyer, in refunds in transit), now
        # completed: it stays there, where nothing but a settled refund can take it.
        detail = (
            "it was reported failed, now completed. Nothing moved: the money stays in "
            "refunds in transit; do not pay the buyer again before checking."
        )
    else:
        # Reported completed (the buyer paid), now failed: the money came back to the provider.
        held = _hold(
            key=f"refund:{refund.pk}:hold",
            amount=refund.amount,
            currency=refund.currency,
            source=ledger.account_get(kind=Kind.PROVIDER_CLEARING, currency=refund.currency),
            escrow=refund.escrow,
            event=event,
            memo=f"Refund {refund.provider_reference} reported failed after completed",
        )
        detail = (
            f"it was reported completed, now failed ({data.reason or 'no reason'}). "
            f"{format_money(refund.amount, refund.currency)} is held for review ({held.key})."
        )
    Refund.objects.filter(pk=refund.pk).update(status=Refund.Status.NEEDS_REVIEW)
    return _contradiction(event=event, what=what, detail=detail)


def _payout_contradicted(
    *, payout: Payout, data: ProviderEventData, event: ProviderEvent, what: str
) -> tuple[str, str]:
    """Paid after failed, or failed after paid: hold the amount, mark the payout for review.

    Paid after failed: the failure had put the money back in the supplier's payable, so it may
    have been paid out again. The amount moves from the payable to held (what the payable no
    longer has becomes a debt, taken from the supplier's next release): it cannot be paid twice.
    Failed after paid: the money came back to the provider; it is held, not made payable.
    """
    currency, amount, org_id = payout.currency, payout.amount, payout.organisation_id
    if data.type == "payout.paid":
        payable = ledger.account_get(
            kind=Kind.SUPPLIER_PAYABLE, currency=currency, organisation_id=org_id
        )
        debt = ledger.account_get(
            kind=Kind.SUPPLIER_DEBT, currency=currency, organisation_id=org_id
        )
        locked = ledger.accounts_lock([payable, debt])
        from_payable = min(locked[payable.pk].current_balance, amount)
        held = _hold(
            key=f"payout:{payout.pk}:hold",
            amount=amount,
            currency=currency,
            source=payable,
            sources=[(payable, from_payable), (debt, amount - from_payable)],
            organisation_id=org_id,
            event=event,
            memo=f"Payout {payout.provider_reference} reported paid after failed",
        )
        detail = (
            f"it was reported failed (the money went back to the supplier's balance), now "
            f"paid. {format_money(amount, currency)} is held for review ({held.key}); "
            f"{format_money(amount - from_payable, currency)} of it was no longer in the "
            "balance and is owed by the supplier."
        )
    else:
        held = _hold(
            key=f"payout:{payout.pk}:hold",
            amount=amount,
            currency=currency,
            source=ledger.account_get(kind=Kind.PROVIDER_CLEARING, currency=currency),
            organisation_id=org_id,
            event=event,
            memo=f"Payout {payout.provider_reference} reported failed after paid",
        )
        detail = (
            f"it was reported paid, now failed ({data.reason or 'no reason'}). "
            f"{format_money(amount, currency)} is held for review ({held.key}), not returned "
            "to the supplier's balance."
        )
    Payout.objects.filter(pk=payout.pk).update(status=Payout.Status.NEEDS_REVIEW)
    return _contradiction(event=event, what=what, detail=detail)


@transaction.atomic
def payout_review_settle(*, payout_id: int, paid: bool, actor, note: str = "") -> Payout:
    """Staff checked a payout the provider reported both paid and failed: settle the held money.

    paid=True: the supplier got the money (held -> provider clearing); paid=False: it never
    left (held -> back to the supplier's balance, any debt the hold recorded cancelled).
    """
    payout = Payout.objects.select_for_update().filter(pk=payout_id).first()
    if payout is None:
        raise NotFound("No such payout.", code=PaymentErrorCode.PAYOUT_NOT_FOUND)
    if payout.status != Payout.Status.NEEDS_REVIEW:
        raise Conflict(
            f"This payout is {payout.status}, not under review.",
            code=PaymentErrorCode.NOT_UNDER_REVIEW,
        )
    hold = LedgerTransaction.objects.get(idempotency_key=f"payout:{payout.pk}:hold")
    held_account = ledger.account_get(
        kind=Kind.HELD_FOR_REVIEW, currency=payout.currency, organisation_id=payout.organisation_id
    )
    if paid:
        clearing = ledger.account_get(kind=Kind.PROVIDER_CLEARING, currency=payout.currency)
        legs = [(held_account, -payout.amount), (clearing, payout.amount)]
    else:
        # Undo the hold: every leg back where it came from.
        legs = [(entry.account, -entry.amount) for entry in hold.entries.select_related("account")]
        if hold.entries.filter(account__kind=Kind.PROVIDER_CLEARING).exists():
            # Failed after paid: the money came back, so the supplier's balance gets it.
            payable = ledger.account_get(
                kind=Kind.SUPPLIER_PAYABLE,
                currency=payout.currency,
                organisation_id=payout.organisation_id,
            )
            legs = [(held_account, -payout.amount), (payable, payout.amount)]
    ledger.ledger_post(
        idempotency_key=f"payout:{payout.pk}:review_settled",
        kind=TxKind.REVIEW_SETTLED,
        amount=payout.amount,
        currency=payout.currency,
        legs=legs,
        memo=f"Payout {payout.provider_reference} checked by staff #{getattr(actor, 'pk', '')}: "
        f"{'paid' if paid else 'not paid'}. {note}",
    )
    Payout.objects.filter(pk=payout.pk).update(
        status=Payout.Status.PAID if paid else Payout.Status.FAILED,
        completed_at=clock.now(),
    )
    payout.refresh_from_db()
    return payout


@transaction.atomic
def payout_request(
    *, organisation, currency: str, amount: Decimal, idempotency_key: str, requested_by=None
) -> Payout:
    """Pay part or all of a supplier's payable out to its bank account (idempotent by key).

    A member asking (`requested_by`) needs the role table's `pay` (finance, admin)."""
    if requested_by is not None:
        team_require(requested_by, Capability.PAY)
    existing = Payout.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        if (existing.organisation_id, existing.currency, existing.amount) != (
            organisation.pk,
            currency,
            amount,
        ):
            raise Unprocessable(
                "This idempotency key was already used for a different payout.",
                code=PlatformErrorCode.IDEMPOTENCY_KEY_REUSED,
            )
        return existing
    if currency not in MINOR_UNITS:
        raise ValidationFailed(
            f"Unsupported currency {currency!r}.", code=PaymentErrorCode.UNSUPPORTED_CURRENCY
        )
    _check_amount(amount, currency)
    payable = ledger.account_get(
        kind=Kind.SUPPLIER_PAYABLE, currency=currency, organisation_id=organisation.pk
    )
    in_transit = ledger.account_get(
        kind=Kind.PAYOUTS_IN_TRANSIT, currency=currency, organisation_id=organisation.pk
    )
    locked = ledger.accounts_lock([payable, in_transit])
    # Re-check under the lock: a concurrent request with the same key may have just committed.
    existing = Payout.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing
    available = locked[payable.pk].current_balance
    if amount > available:
        raise Conflict(
            f"Your available balance is {format_money(available, currency)}.",
            code=PaymentErrorCode.INSUFFICIENT_FUNDS,
            fields={"amount": [f"At most {format_money(available, currency)}."]},
        )
    payout = Payout.objects.create(
        organisation=organisation,
        amount=amount,
        currency=currency,
        idempotency_key=idempotency_key,
        requested_by=requested_by,
        provider=settings.PAYOUT_PROVIDER,
        provider_reference=_new_reference("ta_po"),
        created_at=clock.now(),
    )
    ledger.ledger_post(
        idempotency_key=f"payout:{payout.pk}:requested",
        kind=TxKind.PAYOUT,
        amount=amount,
        currency=currency,
        legs=[(payable, -amount), (in_transit, amount)],
        memo=f"Payout {payout.provider_reference} requested",
        locked=locked,
    )
    event_publish(
        topic=PaymentTopic.PAYOUT_REQUESTED,
        subject_type="payout",
        subject_id=payout.pk,
        audience=[organisation.pk],
        payload={"amount": str(amount), "currency": currency},
    )
    from payments.tasks import provider_payout_request

    transaction.on_commit(lambda: _enqueue(provider_payout_request, payout.pk))
    return payout


# --- webhooks -------------------------------------------------------------------------------
def provider_webhook_receive(*, provider: str, body: bytes, headers) -> tuple[ProviderEvent, bool]:
    """Verify, store once by event id, and apply a provider webhook.

    Returns (event, applied_now). A duplicate returns the stored event and changes nothing.
    Raises ValidationFailed (`invalid_signature` or `malformed_event`) for a bad request.
    """
    try:
        adapter = provider_get(provider)
    except LookupError:
        raise NotFound(
            "Unknown payment provider.", code=PaymentErrorCode.UNKNOWN_PROVIDER
        ) from None
    try:
        adapter.verify_webhook(body=body, headers=headers)
    except WebhookSignatureInvalid as error:
        raise ValidationFailed(str(error), code=PaymentErrorCode.INVALID_SIGNATURE) from None
    try:
        data = adapter.parse_event(body=body)
    except MalformedEvent as error:
        raise ValidationFailed(str(error), code=PaymentErrorCode.MALFORMED_EVENT) from None
    except EventNotUsed as error:
        return _provider_event_not_used(provider=provider, body=body, note=str(error))
    event, applied_now = _provider_event_store_once(provider=provider, data=data)
    if (
        applied_now
        and data.type.startswith("refund.")
        and getattr(adapter, "polls_refund_status", False)
    ):
        # A part of a split refund moved: read the whole back from the provider's API.
        refund = Refund.objects.filter(
            provider=provider, provider_reference=data.object_reference
        ).first()
        if refund is not None and refund.status not in (
            Refund.Status.COMPLETED,
            Refund.Status.FAILED,
            Refund.Status.NEEDS_REVIEW,
        ):
            _after_commit_send_refund(refund)
    return event, applied_now


def _provider_event_store_once(
    *, provider: str, data: ProviderEventData
) -> tuple[ProviderEvent, bool]:
    try:
        applied = _provider_event_apply(provider=provider, data=data)
    except IntegrityError:
        existing = ProviderEvent.objects.filter(provider=provider, event_id=data.event_id).first()
        if existing is None:
            raise
        return existing, False
    if applied is None:
        # Stored before, or by a concurrent delivery that committed first: stored once.
        return ProviderEvent.objects.get(provider=provider, event_id=data.event_id), False
    return applied, True


def _provider_event_not_used(*, provider: str, body: bytes, note: str):
    """A genuine event of a type the app does not act on: stored once as ignored, 200."""
    raw = json.loads(body)
    event_id, event_type = str(raw.get("id", ""))[:100], str(raw.get("type", ""))[:60]
    event, created = ProviderEvent.objects.get_or_create(
        provider=provider,
        event_id=event_id,
        defaults={
            "type": event_type,
            "payload": raw,
            "status": IGNORED,
            "note": note[:200],
            "received_at": clock.now(),
        },
    )
    return event, created


# --- manual payouts (PAYOUT_PROVIDER=manual) --------------------------------------------------
def payout_manual_settle(*, payout_id: int, bank_reference: str, actor) -> ProviderEvent:
    """Staff paid a supplier by bank transfer outside the system: record the bank's reference
    and settle the payout in the ledger (once; a payout is never paid without a reference)."""
    bank_reference = " ".join((bank_reference or "").split())
    if not 4 <= len(bank_reference) <= 80:
        raise ValidationFailed(
            "Enter the bank's reference for the transfer (4 to 80 characters).",
            code=PaymentErrorCode.BANK_REFERENCE_REQUIRED,
            fields={"bank_reference": ["required"]},
        )
    payout = Payout.objects.filter(pk=payout_id).first()
    if payout is None or payout.provider != "manual":
        raise NotFound("No manual payout with this id.", code=PaymentErrorCode.PAYOUT_NOT_FOUND)
    if payout.status in (Payout.Status.PAID, Payout.Status.FAILED, Payout.Status.NEEDS_REVIEW):
        raise Conflict(
            f"This payout is already {payout.status}.", code=PaymentErrorCode.PAYOUT_FINAL
        )
    event, _ = _provider_event_store_once(
        provider="manual",
        data=ProviderEventData(
            event_id=f"manual:{payout.provider_reference}:paid",
            type="payout.paid",
            object_reference=payout.provider_reference,
            amount=payout.amount,
            currency=payout.currency,
            raw={
                "bank_reference": bank_reference,
                "recorded_by": getattr(actor, "pk", None),
                "recorded_at": clock.now().isoformat(),
            },
        ),
    )
    return event


def _provider_event_insert_once(*, provider: str, data: ProviderEventData) -> ProviderEvent | None:
    """Store the event, or return None if it is stored already (one statement: `INSERT … ON
    CONFLICT DO NOTHING` on its (provider, event id); a concurrent delivery of the same event
    that has not committed yet is waited for, then counts as stored if it committed).
    Elsewhere (SQLite) a read, then the INSERT."""
    event = ProviderEvent(
        provider=provider,
        event_id=data.event_id,
        type=data.type,
        object_reference=data.object_reference,
        charge_id=data.charge_id[:80],
        payload=data.raw,
        status=ProviderEvent.Status.APPLIED,
        note="",
        received_at=clock.now(),
    )
    if connection.vendor != "postgresql":
        if ProviderEvent.objects.filter(provider=provider, event_id=data.event_id).exists():
            return None
        event.save(force_insert=True)
        return event
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(ProviderEvent._meta.db_table)} (provider, event_id, type, "
            "object_reference, charge_id, payload, status, note, received_at) "
            "VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s) "
            "ON CONFLICT (provider, event_id) DO NOTHING RETURNING id",
            [
                event.provider,
                event.event_id,
                event.type,
                event.object_reference,
                event.charge_id,
                json.dumps(event.payload),
                event.status,
                event.note,
                event.received_at,
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    event.pk = row[0]
    event._state.adding = False
    return event


@transaction.atomic
def _provider_event_apply(*, provider: str, data: ProviderEventData) -> ProviderEvent | None:
    """Store the event once and apply it (None if it was stored already: nothing done)."""
    event = _provider_event_insert_once(provider=provider, data=data)
    if event is None:
        return None
    family = data.type.split(".", 1)[0]
    models_by_family: dict[str, type[Payment] | type[Refund] | type[Payout]] = {
        "payment": Payment,
        "refund": Refund,
        "payout": Payout,
    }
    model = models_by_family[family]
    target: Payment | Refund | Payout | None
    if family == "payment":
        target = _payment_with_escrow_locked(provider=provider, reference=data.object_reference)
    else:
        target = (
            model.objects.select_related("escrow" if family != "payout" else "organisation")
            .filter(provider=provider, provider_reference=data.object_reference)
            .first()
        )
    status: str
    # The family picked the model, so each isinstance below holds exactly when the event type
    # test beside it does.
    if target is None:
        status, note = UNMATCHED, "No object with this reference."
    elif isinstance(target, Payment) and data.type == "payment.captured":
        status, note = _payment_captured(payment=target, data=data, event=event)
    elif isinstance(target, Payment) and data.type == "payment.failed":
        status, note = _payment_failed(payment=target, data=data, event=event)
    elif isinstance(target, Refund):
        status, note = _refund_event(refund=target, data=data, event=event)
    else:
        # A payout: the other payment types are not events (ProviderEventData.type).
        status, note = _payout_event(payout=cast(Payout, target), data=data, event=event)
    if status == UNMATCHED:
        SystemAlert.objects.create(
            source="payments",
            message=f"Provider event {provider}:{data.event_id} ({data.type} for "
            f"{data.object_reference!r}) not applied: {note}",
            created_at=clock.now(),
        )
    ProviderEvent.objects.filter(pk=event.pk).update(status=status, note=note[:200])
    event.status, event.note = status, note[:200]
    return event


# --- checks -------------------------------------------------------------------------------
def ledger_check_run():
    """Verify the ledger (payments.selectors.ledger_verify) and raise a staff alert if broken."""
    from payments.selectors import ledger_verify

    report = ledger_verify()
    if not report.ok:
        SystemAlert.objects.create(
            source="ledger_check",
            message="Ledger check failed:\n" + "\n".join(report.violations[:50]),
            created_at=clock.now(),
        )
    return report
