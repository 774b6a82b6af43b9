"""Reads of money: escrow summaries, supplier balances and statements, and the ledger check."""

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import cast

from django.db.models import Count, F, Prefetch, Q, QuerySet, Sum

from payments.models import (
    Account,
    Entry,
    Escrow,
    LedgerTransaction,
    Payment,
    Payout,
    ProviderEvent,
    Refund,
    UnfoldedEntry,
)
from tradeassure.core.money import format_money, quantum

Kind = Account.Kind
TxKind = LedgerTransaction.Kind
Rule = Account.Rule
ZERO = Decimal("0")


@dataclass(frozen=True)
class EscrowSummary:
    """The money of one order. `supplier_net` = released - fees (before any inspection charge)."""

    escrow_reference: str
    currency: str
    frozen: bool
    captured: Decimal = ZERO
    held: Decimal = ZERO
    released: Decimal = ZERO
    fees: Decimal = ZERO
    refunded: Decimal = ZERO
    supplier_net: Decimal = ZERO
    inspection_fee_held: Decimal = ZERO
    refunds_in_transit: Decimal = ZERO
    inspection_charged: Decimal = ZERO  # an inspection fee charged to the supplier at fault
    exists: bool = True


def _escrow_sums(escrow_ids) -> dict[int, dict[str, Decimal]]:
    """One query: captured/held/released/fees/refunded per escrow, from the ledger entries."""
    return _sums(
        Entry.objects.filter(transaction__escrow_id__in=list(escrow_ids)), "transaction__escrow_id"
    )


def _sums(entries: QuerySet[Entry], group_by: str) -> dict:
    def total(condition: Q) -> Sum:
        return Sum("amount", filter=condition, default=ZERO)

    on_escrow = Q(account__kind=Kind.ESCROW)
    rows = entries.values(group_by).annotate(
        captured=total(on_escrow & Q(transaction__kind=TxKind.CAPTURE)),
        released=total(on_escrow & Q(transaction__kind=TxKind.RELEASE)),
        refunded=total(on_escrow & Q(transaction__kind=TxKind.REFUND)),
        held=total(on_escrow),
        fees=total(Q(account__kind=Kind.PLATFORM_FEES, transaction__kind=TxKind.RELEASE)),
        inspection_fee_held=total(Q(account__kind=Kind.INSPECTION_FEE_HELD)),
        refunds_in_transit=total(Q(account__kind=Kind.REFUNDS_IN_TRANSIT)),
        inspection_charged=total(
            Q(
                account__kind__in=[Kind.SUPPLIER_PAYABLE, Kind.SUPPLIER_DEBT],
                transaction__kind=TxKind.INSPECTION_FEE_SETTLE,
            )
        ),
    )
    sums = {}
    for row in rows.order_by(group_by):
        sums[row[group_by]] = {
            "captured": row["captured"],
            "released": -row["released"],
            "refunded": -row["refunded"],
            "held": row["held"],
            "fees": row["fees"],
            "inspection_fee_held": row["inspection_fee_held"],
            "refunds_in_transit": row["refunds_in_transit"],
            "inspection_charged": -row["inspection_charged"],
        }
    return sums


def _summary(escrow: Escrow, sums: dict[str, Decimal] | None) -> EscrowSummary:
    q = quantum(escrow.currency)
    values = {key: value.quantize(q) for key, value in (sums or {}).items()}
    zero = ZERO.quantize(q)
    values.setdefault("released", zero)
    values.setdefault("fees", zero)
    return EscrowSummary(
        escrow_reference=escrow.reference,
        currency=escrow.currency,
        frozen=escrow.frozen,
        supplier_net=values["released"] - values["fees"],
        captured=values.get("captured", zero),
        held=values.get("held", zero),
        released=values["released"],
        fees=values["fees"],
        refunded=values.get("refunded", zero),
        inspection_fee_held=values.get("inspection_fee_held", zero),
        refunds_in_transit=values.get("refunds_in_transit", zero),
        inspection_charged=values.get("inspection_charged", zero),
    )


def escrow_summary(*, escrow_reference: str) -> EscrowSummary:
    """The money breakdown of one order (zeros, `exists=False`, if no escrow is open yet).

    One query: the escrow with its sums (grouped over its entries); an escrow with no entries
    yet reads as the zeros `_escrow_sums` leaves out."""

    def total(condition: Q) -> Sum:
        return Sum("transactions__entries__amount", filter=condition, default=ZERO)

    on_escrow = Q(transactions__entries__account__kind=Kind.ESCROW)
    escrow = (
        Escrow.objects.filter(reference=escrow_reference)
        .annotate(
            entry_count=Count("transactions__entries"),
            captured=total(on_escrow & Q(transactions__kind=TxKind.CAPTURE)),
            released=total(on_escrow & Q(transactions__kind=TxKind.RELEASE)),
            refunded=total(on_escrow & Q(transactions__kind=TxKind.REFUND)),
            held=total(on_escrow),
            fees=total(
                Q(
                    transactions__entries__account__kind=Kind.PLATFORM_FEES,
                    transactions__kind=TxKind.RELEASE,
                )
            ),
            inspection_fee_held=total(
                Q(transactions__entries__account__kind=Kind.INSPECTION_FEE_HELD)
            ),
            refunds_in_transit=total(
                Q(transactions__entries__account__kind=Kind.REFUNDS_IN_TRANSIT)
            ),
        )
        .first()
    )
    if escrow is None:
        return EscrowSummary(
            escrow_reference=escrow_reference, currency="", frozen=False, exists=False
        )
    sums = None
    if escrow.entry_count:  # the same signs as `_escrow_sums`
        sums = {
            "captured": escrow.captured,
            "released": -escrow.released,
            "refunded": -escrow.refunded,
            "held": escrow.held,
            "fees": escrow.fees,
            "inspection_fee_held": escrow.inspection_fee_held,
            "refunds_in_transit": escrow.refunds_in_transit,
        }
    return _summary(escrow, sums)


def payment_for_member(*, public_id, user) -> Payment | None:
    """A payment the user's organisation pays, or None (the caller shows 404)."""
    if not user.is_authenticated or user.organisation_id is None:
        return None
    return (
        Payment.objects.select_related("escrow")
        .filter(public_id=public_id, payer_organisation_id=user.organisation_id)
        .first()
    )


def payment_unapplied_transfers(*, payment: Payment):
    return payment.unapplied.select_related("refund").order_by("id")


# --- the supplier's money -------------------------------------------------------------------
@dataclass(frozen=True)
class SupplierBalance:
    currency: str
    available: Decimal
    in_transit: Decimal
    owed: Decimal  # what the supplier owes (taken from its next release)


def account_balance(*, key: str) -> Decimal:
    """An account's balance: the cache for a bounded account, the sum of the entries for a
    credit-only or unbounded one (which cache nothing); 0 for an account not opened yet."""
    account = (
        Account.objects.filter(key=key)
        .only("pk", "rule", "balance", "escrow_id")
        .with_unfolded()
        .first()
    )
    if account is None:
        return ZERO
    if account.is_bounded:
        return account.current_balance
    total = Entry.objects.filter(account_id=account.pk).aggregate(total=Sum("amount"))["total"]
    return total if total is not None else ZERO


def supplier_balances(*, organisation) -> list[SupplierBalance]:
    """Per currency: the payable balance, payouts in transit and any debt (one query)."""
    by_currency: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for account in (
        Account.objects.filter(
            organisation=organisation,
            kind__in=[Kind.SUPPLIER_PAYABLE, Kind.PAYOUTS_IN_TRANSIT, Kind.SUPPLIER_DEBT],
        )
        .with_unfolded()
        .order_by("currency")
    ):
        by_currency[account.currency][account.kind] = account.current_balance
    return [
        SupplierBalance(
            currency=currency,
            available=values.get(Kind.SUPPLIER_PAYABLE, ZERO),
            in_transit=values.get(Kind.PAYOUTS_IN_TRANSIT, ZERO),
            owed=-values.get(Kind.SUPPLIER_DEBT, ZERO),
        )
        for currency, values in sorted(by_currency.items())
    ]


def payouts_for_organisation(*, organisation) -> QuerySet[Payout]:
    return Payout.objects.filter(organisation=organisation).select_related("requested_by")


@dataclass(frozen=True)
class StatementLine:
    escrow_reference: str
    description: str
    currency: str
    frozen: bool
    captured: Decimal
    held: Decimal
    gross_released: Decimal
    fee: Decimal
    refunded: Decimal
    inspection_charged: Decimal
    net: Decimal


def supplier_statement(
    *, organisation, escrows: QuerySet[Escrow] | None = None
) -> list[StatementLine]:
    """One line per escrow of the supplier: gross released, fee, refunds, inspection fee charged
    and net = released - fee - inspection fee charged (two queries)."""
    rows = list(
        (escrows if escrows is not None else Escrow.objects.all())
        .filter(supplier_organisation=organisation)
        .order_by("-id")
    )
    sums = _escrow_sums([escrow.pk for escrow in rows])
    lines = []
    for escrow in rows:
        summary = _summary(escrow, sums.get(escrow.pk))
        lines.append(
            StatementLine(
                escrow_reference=escrow.reference,
                description=escrow.description,
                currency=escrow.currency,
                frozen=escrow.frozen,
                captured=summary.captured,
                held=summary.held,
                gross_released=summary.released,
                fee=summary.fees,
                refunded=summary.refunded,
                inspection_charged=summary.inspection_charged,
                net=summary.supplier_net - summary.inspection_charged,
            )
        )
    return lines


def supplier_statement_totals(*, organisation) -> list[StatementLine]:
    """The statement's totals row per currency, over every order of the supplier (one query)."""
    sums = _sums(
        Entry.objects.filter(transaction__escrow__supplier_organisation=organisation),
        "transaction__escrow__currency",
    )
    lines = []
    for currency, values in sums.items():
        q = quantum(currency)
        v = {key: value.quantize(q) for key, value in values.items()}
        lines.append(
            StatementLine(
                escrow_reference="",
                description="Total",
                currency=currency,
                frozen=False,
                captured=v["captured"],
                held=v["held"],
                gross_released=v["released"],
                fee=v["fees"],
                refunded=v["refunded"],
                inspection_charged=v["inspection_charged"],
                net=v["released"] - v["fees"] - v["inspection_charged"],
            )
        )
    return lines


def escrows_for_supplier(*, organisation) -> QuerySet[Escrow]:
    return Escrow.objects.filter(supplier_organisation=organisation).order_by("-id")


@dataclass(frozen=True)
class ActivityRow:
    """One credit (+) or debit (-) of the supplier's available balance."""

    at: object
    label: str
    order: str  # the order's description ("TA-000029 — …"), blank for payouts
    amount: Decimal
    note: str = ""


@dataclass(frozen=True)
class BalanceActivity:
    """A currency's balance itemised: brought forward + the rows = available, to the cent."""

    currency: str
    rows: list[ActivityRow]
    brought_forward: Decimal
    available: Decimal
    credits: Decimal
    debits: Decimal


_ACTIVITY_LABELS: dict[str, str] = {
    TxKind.INSPECTION_FEE_SETTLE: "Inspection fee charged (you were found at fault)",
    TxKind.PAYOUT: "Payout to your bank account",
    TxKind.PAYOUT_FAILED: "Payout failed: returned to your balance",
}


def _activity_rows(entry: Entry) -> list[ActivityRow]:
    """Split one posting on the payable account into what the supplier recognises: a release is
    the gross amount, minus the platform fee, minus any debt it settled; the rows sum to the entry."""
    tx = entry.transaction
    order = tx.escrow.description if tx.escrow else ""
    if tx.kind != TxKind.RELEASE:
        note = ""
        if tx.kind == TxKind.INSPECTION_FEE_SETTLE:
            to_debt = -sum(
                (e.amount for e in tx.entries.all() if e.account.kind == Kind.SUPPLIER_DEBT), ZERO
            )
            if to_debt:
                owed = format_money(to_debt, tx.currency)
                note = f"{owed} more is owed (taken from your next release)"
        label = _ACTIVITY_LABELS.get(tx.kind, tx.get_kind_display())
        return [
            ActivityRow(at=tx.created_at, label=label, order=order, amount=entry.amount, note=note)
        ]
    legs = {e.account.kind: e.amount for e in tx.entries.all()}
    gross = -legs.get(Kind.ESCROW, ZERO)
    fee = legs.get(Kind.PLATFORM_FEES, ZERO)
    settled = legs.get(Kind.SUPPLIER_DEBT, ZERO)
    rows = [
        ActivityRow(at=tx.created_at, label="Released to you", order=order, amount=gross),
        ActivityRow(at=tx.created_at, label="Platform fee", order=order, amount=-fee),
    ]
    if settled:
        rows.append(
            ActivityRow(
                at=tx.created_at,
                label="Owed to the platform, settled from this release",
                order=order,
                amount=-settled,
            )
        )
    return [row for row in rows if row.amount]


def supplier_activity(*, organisation, limit: int = 60) -> list[BalanceActivity]:
    """Per currency, the latest postings on the supplier's available balance, itemised, with what
    came before as one brought-forward line, so the page adds up to "Available" (three queries)."""
    accounts = {
        account.currency: account
        for account in Account.objects.filter(
            organisation=organisation, kind=Kind.SUPPLIER_PAYABLE
        ).with_unfolded()
    }
    entries = list(
        Entry.objects.filter(account__in=list(accounts.values()))
        .select_related("transaction__escrow")
        .prefetch_related(
            Prefetch("transaction__entries", queryset=Entry.objects.select_related("account"))
        )
        .order_by("-id")[:limit]
    )
    result = []
    for currency, account in sorted(accounts.items()):
        rows = [
            row
            for entry in reversed(entries)  # oldest first, so the rows run down to "Available"
            if entry.currency == currency
            for row in _activity_rows(entry)
        ]
        shown = sum((row.amount for row in rows), ZERO)
        result.append(
            BalanceActivity(
                currency=currency,
                rows=rows,
                brought_forward=account.current_balance - shown,
                available=account.current_balance,
                credits=sum((row.amount for row in rows if row.amount > 0), ZERO),
                debits=sum((row.amount for row in rows if row.amount < 0), ZERO),
            )
        )
    return result


# --- the ledger check -------------------------------------------------------------------------
@dataclass
class LedgerReport:
    violations: list[str] = field(default_factory=list)
    stats: dict[str, object] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations


def ledger_verify() -> LedgerReport:
    """Check every invariant of the ledger; the report lists each violation found."""
    report = LedgerReport()
    violations = report.violations

    # 1. Every transaction sums to zero per currency (sums compared in Decimal, not in SQL, so
    #    SQLite's float arithmetic cannot report a false violation).
    for row in (
        Entry.objects.values("transaction_id", "currency").annotate(total=Sum("amount")).order_by()
    ):
        if row["total"].quantize(quantum(row["currency"])) != 0:
            violations.append(
                f"Transaction #{row['transaction_id']} does not balance in {row['currency']}: "
                f"{row['total']}"
            )
    empty = LedgerTransaction.objects.filter(entries__isnull=True).values_list("pk", flat=True)
    for pk in empty:
        violations.append(f"Transaction #{pk} has no entries.")

    # 2. Cached balances (bounded accounts) equal the entries, the others cache nothing, no
    #    account has the wrong sign, and no credit-only account was ever debited.
    derived = {
        row["account_id"]: row["total"]
        for row in Entry.objects.values("account_id").annotate(total=Sum("amount")).order_by()
    }
    totals_held: dict[str, Decimal] = defaultdict(Decimal)
    unfolded_rows = list(
        UnfoldedEntry.objects.values("account_id")
        .annotate(total=Sum("amount"), count=Count("pk"))
        .order_by()
    )
    unfolded = {row["account_id"]: row["total"] for row in unfolded_rows}
    accounts = Account.objects.all().only(
        "pk", "key", "kind", "rule", "currency", "balance", "escrow_id"
    )
    for account in accounts.iterator():
        balance = derived.get(account.pk, ZERO).quantize(quantum(account.currency))
        if account.rule != Account.RULE_BY_KIND.get(account.kind):
            violations.append(f"Account {account.key}: rule {account.rule!r} is not its kind's")
        cached = account.balance + unfolded.get(account.pk, ZERO)
        if account.is_bounded and balance != cached:
            violations.append(
                f"Account {account.key}: cached balance {account.balance} + unfolded "
                f"{unfolded.get(account.pk, ZERO)} != entries {balance}"
            )
        elif not account.is_bounded and account.balance != 0:
            violations.append(
                f"Account {account.key}: caches a balance ({account.balance}); "
                "its balance is the sum of its entries"
            )
        if account.rule == Rule.NON_POSITIVE and balance > 0:
            violations.append(f"Account {account.key} is positive: {balance}")
        elif account.rule in (Rule.NON_NEGATIVE, Rule.CREDIT_ONLY) and balance < 0:
            violations.append(f"Account {account.key} is negative: {balance}")
        if account.kind == Kind.ESCROW:
            totals_held[account.currency] += balance
    debited = Entry.objects.filter(account__rule=Rule.CREDIT_ONLY, amount__lte=0).values_list(
        "account__key", "transaction_id"
    )
    for key, transaction_id in debited[:50]:
        violations.append(
            f"Account {key} is credit-only but transaction #{transaction_id} debits it"
        )
    # Each unfolded entry is one entry of its account, on a shared bounded account, moving it
    # away from its bound (only the entry trigger writes them).
    misplaced = UnfoldedEntry.objects.filter(
        ~Q(account_id=F("entry__account_id"), amount=F("entry__amount"))
        | Q(account__escrow__isnull=False)
        | ~Q(account__rule__in=Account.BOUNDED)
        | Q(account__rule=Rule.NON_NEGATIVE, amount__lt=0)
        | Q(account__rule=Rule.NON_POSITIVE, amount__gt=0)
    ).values_list("entry_id", flat=True)
    for entry_id in misplaced[:50]:
        violations.append(f"Unfolded entry #{entry_id} is not an entry away from its bound")

    # 3. Each escrow holds exactly captured - released - refunded.
    movements = (
        LedgerTransaction.objects.filter(
            escrow__isnull=False, kind__in=[TxKind.CAPTURE, TxKind.RELEASE, TxKind.REFUND]
        )
        .values("escrow_id", "kind")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    expected: dict[int, Decimal] = defaultdict(Decimal)
    for row in movements:
        sign = 1 if row["kind"] == TxKind.CAPTURE else -1
        expected[row["escrow_id"]] += sign * row["total"]
    for account in Account.objects.filter(kind=Kind.ESCROW).select_related("escrow"):
        # Escrow accounts are opened with their escrow (payments.services); the column is
        # nullable only for the other kinds, which the schema cannot say.
        escrow_id = cast(int, account.escrow_id)
        want = expected.get(escrow_id, ZERO).quantize(quantum(account.currency))
        have = derived.get(account.pk, ZERO).quantize(quantum(account.currency))
        if want != have:
            violations.append(
                f"Escrow {cast(Escrow, account.escrow).reference} holds {have}, but captured - released - "
                f"refunded = {want}"
            )

    # 4. Provider events: every money event moved money exactly once; captures, completed
    #    refunds and paid/failed payouts each have exactly one ledger transaction.
    money_types = ["payment.captured", "refund.completed", "payout.paid", "payout.failed"]
    applied_without_money = ProviderEvent.objects.filter(
        status=ProviderEvent.Status.APPLIED, type__in=money_types, ledger_transaction__isnull=True
    ).values_list("provider", "event_id")
    for provider, event_id in applied_without_money:
        violations.append(
            f"Provider event {provider}:{event_id} is marked applied but moved nothing."
        )
    # A contradicting event (held) moves money only into held-for-review.
    stray = LedgerTransaction.objects.filter(provider_event__isnull=False).exclude(
        provider_event__status=ProviderEvent.Status.APPLIED
    )
    stray = stray.exclude(
        provider_event__status=ProviderEvent.Status.HELD, kind=TxKind.HELD_FOR_REVIEW
    )
    for pk in stray.values_list("pk", flat=True):
        violations.append(f"Transaction #{pk} came from a provider event not marked applied.")
    captured_refs = set(
        Payment.objects.filter(status=Payment.Status.CAPTURED).values_list(
            "provider_reference", flat=True
        )
    )
    capture_counts = (
        LedgerTransaction.objects.filter(kind__in=[TxKind.CAPTURE, TxKind.INSPECTION_FEE_CAPTURE])
        .values("provider_event__object_reference")
        .annotate(count=Sum(1))
        .order_by()
    )
    seen_refs = set()
    for row in capture_counts:
        reference = row["provider_event__object_reference"]
        seen_refs.add(reference)
        if row["count"] != 1:
            violations.append(f"Payment {reference} was captured {row['count']} times.")
    for reference in sorted(captured_refs - seen_refs):
        violations.append(
            f"Payment {reference} is marked captured but has no capture in the ledger."
        )
    for reference in sorted(seen_refs - captured_refs):
        violations.append(f"Payment {reference} has a capture in the ledger but is not captured.")
    # A refund under review counts as completed if its completion was booked before.
    under_review = Refund.objects.filter(status=Refund.Status.NEEDS_REVIEW).values_list(
        "pk", flat=True
    )
    completed_refunds = (
        Refund.objects.filter(status=Refund.Status.COMPLETED).count()
        + LedgerTransaction.objects.filter(
            idempotency_key__in=[f"refund:{pk}:completed" for pk in under_review]
        ).count()
    )
    refund_completions = LedgerTransaction.objects.filter(
        kind__in=[TxKind.REFUND_COMPLETED, TxKind.UNAPPLIED_RETURN]
    ).count()
    if completed_refunds != refund_completions:
        violations.append(
            f"{completed_refunds} refunds are completed but {refund_completions} were paid in the ledger."
        )
    # A payout under review was finished once (paid or failed) before the contradiction.
    finished_payouts = Payout.objects.filter(
        status__in=[Payout.Status.PAID, Payout.Status.FAILED, Payout.Status.NEEDS_REVIEW]
    ).count()
    payout_finishes = LedgerTransaction.objects.filter(
        kind__in=[TxKind.PAYOUT_COMPLETED, TxKind.PAYOUT_FAILED]
    ).count()
    if finished_payouts != payout_finishes:
        violations.append(
            f"{finished_payouts} payouts finished but {payout_finishes} were settled in the ledger."
        )

    report.stats = {
        "transactions": LedgerTransaction.objects.count(),
        "entries": Entry.objects.count(),
        "accounts": len(derived),
        "escrows": Escrow.objects.count(),
        "provider_events": ProviderEvent.objects.count(),
        "unfolded_entries": sum(row["count"] for row in unfolded_rows),
        "held_in_escrow": {currency: str(total) for currency, total in sorted(totals_held.items())},
    }
    return report


def escrow_held(*, escrow_reference: str) -> Decimal:
    """What the escrow holds now (zero before it is opened)."""
    return escrow_summary(escrow_reference=escrow_reference).held
