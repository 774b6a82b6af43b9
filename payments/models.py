"""The escrow ledger (double entry) and the records of money moving through a payment provider.

Sign convention: an entry's amount is what it adds to its account's balance, so every account
reads "money assigned here". Money that comes in from outside is drawn from the provider
clearing account (the only account that goes negative); money that leaves goes back into it.
The entries of one ledger transaction sum to zero per currency.
"""

import uuid
from collections.abc import Collection
from decimal import Decimal
from typing import ClassVar

from django.db import models
from django.db.models.functions import Coalesce
from django.urls import reverse

from tradeassure.core.money import AMOUNT_DECIMAL_PLACES, AMOUNT_MAX_DIGITS, CURRENCY_CHOICES


def _amount(**kwargs) -> models.DecimalField:
    return models.DecimalField(
        max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES, **kwargs
    )


class Escrow(models.Model):
    """The money held for one order, identified by its `reference` ("order:<id>")."""

    reference = models.CharField(max_length=60, unique=True)
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    buyer_organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="+"
    )
    supplier_organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="+"
    )
    description = models.CharField(max_length=200, blank=True)
    # The reference a buyer quotes on a bank transfer (T/T) so it is matched to this escrow.
    bank_reference = models.CharField(max_length=20, unique=True)
    frozen = models.BooleanField(default=False)
    # The provider reported a captured charge as failed: nothing leaves this escrow (release or
    # refund) until staff have checked (a dispute's unfreeze does not lift it).
    on_hold = models.BooleanField(default=False)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "escrows"

    def __str__(self) -> str:
        return f"{self.reference} ({self.currency})"


# Each account kind's sign rule (Account.Rule), by value: the Meta constraint below is built
# from it, so the database refuses an account whose rule does not follow from its kind.
ACCOUNT_RULES: dict[str, str] = {
    "escrow": "non_negative",
    "inspection_fee_held": "non_negative",
    "refunds_in_transit": "non_negative",
    "supplier_payable": "non_negative",
    "payouts_in_transit": "non_negative",
    "unapplied_funds": "non_negative",
    "held_for_review": "non_negative",
    "supplier_debt": "non_positive",
    "platform_fees": "credit_only",
    "inspection_fees_earned": "credit_only",
    "provider_clearing": "unbounded",
}


def _rule_of_kind() -> models.Q:
    condition = models.Q()
    for rule in sorted(set(ACCOUNT_RULES.values())):
        kinds = sorted(kind for kind, kind_rule in ACCOUNT_RULES.items() if kind_rule == rule)
        condition |= models.Q(kind__in=kinds, rule=rule)
    return condition


class AccountQuerySet(models.QuerySet):
    def with_unfolded(self, *, keys: Collection[str] | None = None) -> "AccountQuerySet":
        """Each account with `unfolded_total`, the sum of its entries not yet in its cache (one
        subquery per row, in the statement's own snapshot, so `current_balance` is one
        consistent reading). With `keys`, only those accounts are summed (the others get None,
        so their `current_balance` sums on demand): a supplier's payable collects one unfolded
        entry per release until its next payout, and a release does not need its balance.
        Not for a locking read: a statement that waited for a row lock would sum with its old
        snapshot; lock first, then read this (payments.ledger)."""
        pending = (
            UnfoldedEntry.objects.filter(account_id=models.OuterRef("pk"))
            .order_by()
            .values("account_id")
            .annotate(total=models.Sum("amount"))
            .values("total")
        )
        total = Coalesce(models.Subquery(pending, output_field=_amount()), models.Value(Decimal(0)))
        if keys is None:
            return self.annotate(unfolded_total=total)
        if not keys:
            return self.annotate(unfolded_total=models.Value(None, output_field=_amount()))
        return self.annotate(
            unfolded_total=models.Case(
                models.When(key__in=list(keys), then=total),
                default=models.Value(None),
                output_field=_amount(),
            )
        )


class Account(models.Model):
    class Kind(models.TextChoices):
        ESCROW = "escrow", "Escrow (held for an order)"
        INSPECTION_FEE_HELD = "inspection_fee_held", "Inspection fee held"
        REFUNDS_IN_TRANSIT = "refunds_in_transit", "Refunds owed to the buyer, in transit"
        SUPPLIER_PAYABLE = "supplier_payable", "Supplier payable"
        PAYOUTS_IN_TRANSIT = "payouts_in_transit", "Supplier payouts in transit"
        SUPPLIER_DEBT = "supplier_debt", "Owed by the supplier (taken from the next release)"
        PLATFORM_FEES = "platform_fees", "Platform fee revenue"
        INSPECTION_FEES_EARNED = "inspection_fees_earned", "Inspection fees due to inspectors"
        UNAPPLIED_FUNDS = "unapplied_funds", "Unapplied transfers held for return"
        # Money the provider's reports disagree about (paid after failed, …): kept here, out of
        # every balance that can be paid out, until staff settle it.
        HELD_FOR_REVIEW = "held_for_review", "Held for review (provider reports disagree)"
        PROVIDER_CLEARING = "provider_clearing", "Payment provider clearing"

    class Rule(models.TextChoices):
        """How an account's sign is kept, which decides whether a posting must lock it.

        Bounded accounts (never below zero, or never above) keep a cached balance that the
        database updates with every entry, under that row's lock. Credit-only accounts (revenue
        the platform is only ever paid into) have no cache and are never locked: each entry must
        be positive, a rule one row can be checked against, so their balance (the SUM of their
        entries) cannot go negative and many postings append to them at once.
        """

        NON_NEGATIVE = "non_negative", "Never below zero"
        NON_POSITIVE = "non_positive", "Never above zero"
        CREDIT_ONLY = "credit_only", "Only credited (balance summed from entries)"
        UNBOUNDED = "unbounded", "No sign rule (balance summed from entries)"

    RULE_BY_KIND: ClassVar[dict[str, str]] = ACCOUNT_RULES
    # Rules whose balance is cached on the row (and so locked to change).
    BOUNDED: ClassVar[tuple[str, ...]] = (Rule.NON_NEGATIVE, Rule.NON_POSITIVE)

    key = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=30, choices=Kind.choices)
    rule = models.CharField(max_length=12, choices=Rule.choices)
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    escrow = models.ForeignKey(
        Escrow, on_delete=models.PROTECT, null=True, blank=True, related_name="accounts"
    )
    organisation = models.ForeignKey(
        "accounts.Organisation",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    # Bounded accounts only: the sum of this account's entries, kept by the database (PostgreSQL:
    # a trigger on every entry) or by ledger_post (SQLite); `ledger_check` verifies it. Always 0
    # for credit-only and unbounded accounts, whose balance is derived from their entries.
    # An account shared by many escrows (a supplier's payable or debt, unapplied funds…) caches
    # only part of it on PostgreSQL: entries that move it away from its bound wait as
    # UnfoldedEntry rows until the next entry towards the bound folds them in, so its balance
    # is `balance + SUM(unfolded)` (`current_balance`, read through `with_unfolded()`).
    balance = _amount(default=0)

    objects = AccountQuerySet.as_manager()
    # Set by `with_unfolded()` (or payments.ledger after a lock): see `current_balance`.
    unfolded_total: Decimal | None

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rule__in=["credit_only", "unbounded"], balance=0)
                | models.Q(rule="non_positive", balance__lte=0)
                | models.Q(rule="non_negative", balance__gte=0),
                name="payments_account_balance_sign",
            ),
            models.CheckConstraint(condition=_rule_of_kind(), name="payments_account_rule_of_kind"),
        ]

    def __str__(self) -> str:
        return self.key

    def save(self, *args, **kwargs) -> None:
        if not self.rule:
            self.rule = self.RULE_BY_KIND[self.kind]
        super().save(*args, **kwargs)

    @property
    def is_bounded(self) -> bool:
        return self.rule in self.BOUNDED

    @property
    def is_shared(self) -> bool:
        """Bounded and not an escrow's own: many postings may move it at once (a supplier's
        payable and debt, unapplied funds, held for review, payouts in transit). An escrow's
        accounts only move under the escrow's row lock, so they cache every entry in place."""
        return self.is_bounded and self.escrow_id is None

    @property
    def current_balance(self):
        """The balance: the cache plus the entries not folded into it yet (read with
        `Account.objects.with_unfolded()`, or else summed here for a shared account)."""
        unfolded = getattr(self, "unfolded_total", None)
        if unfolded is None:
            if not self.is_shared or not self.pk:
                return self.balance
            # Read without the annotation: one query (hot paths use with_unfolded()).
            total = UnfoldedEntry.objects.filter(account_id=self.pk).aggregate(
                total=models.Sum("amount")
            )["total"]
            unfolded = total if total is not None else Decimal(0)
        return self.balance + unfolded


class ProviderEvent(models.Model):
    """A webhook event from a payment provider, stored once by (provider, event id)."""

    class Status(models.TextChoices):
        APPLIED = "applied", "Applied"
        IGNORED = "ignored", "Ignored (stale or already reflected)"
        UNMATCHED = "unmatched", "Unmatched (unknown object)"
        # Contradicts an event already applied (e.g. paid after failed): a staff alert was
        # raised and the money held, never applied twice nor dropped.
        HELD = "held", "Held for review (contradicts an applied event)"

    provider = models.CharField(max_length=30)
    event_id = models.CharField(max_length=100)
    type = models.CharField(max_length=60)
    object_reference = models.CharField(max_length=100, blank=True)
    # The provider's id for the charge a payment event is about (a failure and a capture of the
    # same charge contradict each other).
    charge_id = models.CharField(max_length=80, blank=True)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices)
    note = models.CharField(max_length=200, blank=True)
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "event_id"], name="payments_provider_event_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.event_id} {self.type}"


class LedgerTransaction(models.Model):
    """An immutable, balanced set of entries; applied once per idempotency key."""

    class Kind(models.TextChoices):
        CAPTURE = "capture", "Payment captured into escrow"
        INSPECTION_FEE_CAPTURE = "inspection_fee_capture", "Inspection fee captured"
        RELEASE = "release", "Released to the supplier"
        REFUND = "refund", "Refunded to the buyer"
        REFUND_COMPLETED = "refund_completed", "Refund paid out by the provider"
        REFUND_FAILED = "refund_failed", "Refund failed at the provider"
        PAYOUT = "payout", "Supplier payout requested"
        PAYOUT_COMPLETED = "payout_completed", "Payout paid by the provider"
        PAYOUT_FAILED = "payout_failed", "Payout failed; back to payable"
        INSPECTION_FEE_SETTLE = "inspection_fee_settle", "Inspection fee settled"
        UNAPPLIED_RECEIVED = "unapplied_received", "Transfer received that could not be applied"
        UNAPPLIED_RETURN = "unapplied_return", "Unapplied transfer returned"
        HELD_FOR_REVIEW = "held_for_review", "Held: the provider's reports disagree"
        REVIEW_SETTLED = "review_settled", "Held money settled by staff"

    idempotency_key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=30, choices=Kind.choices)
    escrow = models.ForeignKey(
        Escrow, on_delete=models.PROTECT, null=True, blank=True, related_name="transactions"
    )
    # The gross amount the operation moved (for statements); entries carry the detail.
    amount = _amount()
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    # The provider event that caused it, if any: one event moves money at most once.
    provider_event = models.OneToOneField(
        ProviderEvent,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ledger_transaction",
    )
    memo = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["escrow", "kind"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} {self.currency} {self.amount}"


class Entry(models.Model):
    transaction = models.ForeignKey(
        LedgerTransaction, on_delete=models.PROTECT, related_name="entries"
    )
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries")
    amount = _amount()
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "entries"
        constraints = [
            models.CheckConstraint(condition=~models.Q(amount=0), name="payments_entry_not_zero")
        ]

    def __str__(self) -> str:
        return f"{self.account.key} {self.amount:+}"


class UnfoldedEntry(models.Model):
    """An entry that moved a shared bounded account away from its bound (a credit to a supplier's
    payable, a new debt), not yet added to the account's cached balance (PostgreSQL only).

    Such an entry can never break the account's sign rule, so it takes no lock: the entry
    trigger appends this row instead of updating the account's row, and many releases credit
    one supplier's payable at once. The next entry that moves the account towards its bound (a
    payout, a fee taken from the payable, a debt settled) locks the account's row, folds every
    committed unfolded entry into the cache (deleting these rows) and checks the bound against
    the whole balance, all in the entry trigger. Only that trigger writes this table.
    """

    entry = models.OneToOneField(
        Entry, on_delete=models.PROTECT, primary_key=True, related_name="+"
    )
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    amount = _amount()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(amount=0), name="payments_unfolded_entry_not_zero"
            )
        ]

    def __str__(self) -> str:
        return f"entry #{self.pk} {self.amount:+}"


class Payment(models.Model):
    # Purposes whose money is held apart from the escrow (the inspection fee account).
    INSPECTION_FEE_PURPOSES: ClassVar[tuple[str, ...]] = (
        "inspection_fee",
        "preship_inspection",
    )

    """Money a payer organisation sends into an escrow (or an inspection fee)."""

    class Purpose(models.TextChoices):
        INITIAL = "initial", "Initial payment"
        BALANCE = "balance", "Balance payment"
        INSPECTION_FEE = "inspection_fee", "Inspection fee"
        # The buyer's own inspection of the goods before shipment (orders), not a dispute's.
        PRESHIPMENT_INSPECTION_FEE = "preship_inspection", "Pre-shipment inspection fee"

    class Method(models.TextChoices):
        CARD = "card", "Card"
        BANK_TRANSFER = "bank_transfer", "Bank transfer (T/T)"

    class Status(models.TextChoices):
        PENDING = "pending", "Awaiting payment"
        # A card was handed to the provider (one attempt, recorded in `card_attempt`): no
        # other card is taken until the provider answers captured or failed.
        SUBMITTED = "submitted", "Card submitted: processing"
        FAILED = "failed", "Declined (you may try again)"
        CAPTURED = "captured", "Paid"

    # The only moves the payer and the provider's reports can make; captured money is final.
    # Keyed by str: the status column holds plain strings (a Status member equals and hashes as
    # its value). PENDING/FAILED -> SUBMITTED is the card submission's compare-and-set.
    TRANSITIONS: ClassVar[dict[str, set[str]]] = {
        Status.PENDING: {Status.SUBMITTED, Status.FAILED, Status.CAPTURED},
        Status.SUBMITTED: {Status.FAILED, Status.CAPTURED},
        Status.FAILED: {Status.SUBMITTED, Status.CAPTURED, Status.PENDING},
        Status.CAPTURED: set(),
    }
    # The statuses a new card submission may start from.
    CARD_SUBMITTABLE: ClassVar[tuple[str, ...]] = (Status.PENDING, Status.FAILED)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    escrow = models.ForeignKey(Escrow, on_delete=models.PROTECT, related_name="payments")
    purpose = models.CharField(max_length=20, choices=Purpose.choices)
    amount = _amount()
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    method = models.CharField(max_length=20, choices=Method.choices)
    payer_organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="+"
    )
    idempotency_key = models.CharField(max_length=200, unique=True)
    return_url = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    provider = models.CharField(max_length=30)
    provider_reference = models.CharField(max_length=100, unique=True)
    failure_reason = models.CharField(max_length=200, blank=True)
    # What the provider told the payer to do (bank details and reference for a T/T).
    instructions = models.JSONField(default=dict, blank=True)
    # The last card submission handed to the provider (the API's Idempotency-Key, or the card
    # form's hidden key): a replay of it gets the same answer and charges nothing more.
    card_attempt = models.CharField(max_length=255, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    captured_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gt=0), name="payments_payment_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} {self.currency} {self.amount} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("payments:payment_detail", args=[self.public_id])


class Refund(models.Model):
    """Money going back to the buyer through the provider: escrow refunds and returned transfers."""

    class Kind(models.TextChoices):
        ESCROW = "escrow", "Refund from escrow"
        INSPECTION_FEE = "inspection_fee", "Inspection fee refund"
        UNAPPLIED_RETURN = "unapplied_return", "Return of an unapplied transfer"

    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested"
        PROCESSING = "processing", "Processing at the provider"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed (staff follow up)"
        # The provider reported it completed and failed: staff check before anything moves.
        NEEDS_REVIEW = "needs_review", "Needs review (the provider's reports disagree)"

    # Provider reports only move a refund forward; a late "created" after "completed" is stale.
    RANK: ClassVar[dict[str, int]] = {
        Status.REQUESTED: 0,
        Status.PROCESSING: 1,
        Status.COMPLETED: 2,
        Status.FAILED: 2,
        Status.NEEDS_REVIEW: 3,
    }

    escrow = models.ForeignKey(Escrow, on_delete=models.PROTECT, related_name="refunds")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.ESCROW)
    amount = _amount()
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    reason = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.REQUESTED)
    provider = models.CharField(max_length=30)
    provider_reference = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gt=0), name="payments_refund_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"Refund {self.currency} {self.amount} ({self.status})"


class Payout(models.Model):
    """A supplier's payable paid out to its bank account through the provider."""

    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested"
        PROCESSING = "processing", "Processing at the provider"
        PAID = "paid", "Paid"
        FAILED = "failed", "Failed (returned to your balance)"
        # The provider reported it paid and failed: the money is held until staff check.
        NEEDS_REVIEW = "needs_review", "Being checked by our staff"

    RANK: ClassVar[dict[str, int]] = {
        Status.REQUESTED: 0,
        Status.PROCESSING: 1,
        Status.PAID: 2,
        Status.FAILED: 2,
        Status.NEEDS_REVIEW: 3,
    }

    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="+"
    )
    amount = _amount()
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    idempotency_key = models.CharField(max_length=200, unique=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.REQUESTED)
    requested_by = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    provider = models.CharField(max_length=30)
    provider_reference = models.CharField(max_length=100, unique=True)
    failure_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gt=0), name="payments_payout_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"Payout {self.currency} {self.amount} ({self.status})"


class UnappliedTransfer(models.Model):
    """Money that arrived for a payment but did not match it (amount or currency): returned."""

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="unapplied")
    amount = _amount()
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    reason = models.CharField(max_length=200)
    refund = models.OneToOneField(
        Refund, on_delete=models.PROTECT, null=True, blank=True, related_name="unapplied_transfer"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"Unapplied {self.currency} {self.amount} for payment #{self.payment_id}"
