"""Reconciliation: the provider's payments and refunds for a period against the app's records.

Read-only. Reports what the provider has that the ledger does not know, what the ledger has
that the provider does not, and amounts or statuses that differ. A difference means money moved
(or was recorded) on one side only: a missed webhook, a refund made by hand in the provider's
dashboard, or a bug. Intents that never took money and that the app does not know (e.g. left
by a rolled-back request) are listed as notes, not differences.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from payments.models import Payment, Refund
from payments.providers import provider_get


@dataclass
class ReconcileReport:
    provider: str
    since: datetime
    until: datetime
    checked_payments: int = 0
    checked_refunds: int = 0
    differences: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences


def reconcile(*, provider: str, since: datetime, until: datetime) -> ReconcileReport:
    adapter = provider_get(provider)
    if not hasattr(adapter, "provider_objects"):
        raise LookupError(f"The {provider} adapter cannot list its payments and refunds.")
    report = ReconcileReport(provider=provider, since=since, until=until)
    seen_payments: set[str] = set()
    refund_parts: dict[str, list] = defaultdict(list)
    for item in adapter.provider_objects(since=since, until=until):
        if item.kind == "payment":
            report.checked_payments += 1
            seen_payments.add(item.reference)
            _check_payment(report, provider, item)
        else:
            report.checked_refunds += 1
            refund_parts[item.reference].append(item)
    seen_refunds = set()
    for reference, parts in refund_parts.items():
        seen_refunds.add(reference)
        _check_refund(report, provider, reference, parts)

    # The ledger's side: what the app recorded in the period that the provider did not list.
    for payment in Payment.objects.filter(
        provider=provider, created_at__gte=since, created_at__lt=until
    ).exclude(provider_reference__in=seen_payments):
        if payment.status == Payment.Status.CAPTURED:
            report.differences.append(
                f"payment {payment.provider_reference}: captured in the ledger "
                f"({payment.currency} {payment.amount}) but not at {provider}"
            )
    for refund in Refund.objects.filter(
        provider=provider, created_at__gte=since, created_at__lt=until
    ).exclude(provider_reference__in=seen_refunds):
        report.differences.append(
            f"refund {refund.provider_reference}: {refund.status} in the ledger "
            f"({refund.currency} {refund.amount}) but not at {provider}"
        )
    return report


def _check_payment(report: ReconcileReport, provider: str, item) -> None:
    payment = Payment.objects.filter(provider=provider, provider_reference=item.reference).first()
    money = f"{item.currency} {item.amount}"
    if payment is None:
        line = f"payment {item.id}: {item.status} at {provider} ({money}), unknown to the ledger"
        (report.differences if item.status == "captured" else report.notes).append(line)
        return
    if (payment.currency, payment.amount) != (item.currency, item.amount):
        report.differences.append(
            f"payment {item.id}: {money} at {provider}, "
            f"{payment.currency} {payment.amount} in the ledger"
        )
    if (item.status == "captured") != (payment.status == Payment.Status.CAPTURED):
        report.differences.append(
            f"payment {item.id}: {item.status} at {provider}, {payment.status} in the ledger"
        )


def _check_refund(report: ReconcileReport, provider: str, reference: str, parts: list) -> None:
    ids = ", ".join(part.id for part in parts)
    live = [part for part in parts if part.status != "failed"]
    amount = sum((part.amount for part in live), Decimal(0))
    currency = parts[0].currency
    refund = (
        Refund.objects.filter(provider=provider, provider_reference=reference).first()
        if reference
        else None
    )
    if refund is None:
        report.differences.append(
            f"refund {ids}: {currency} {amount} at {provider}, unknown to the ledger"
        )
        return
    if not live:
        status = "failed"
    elif all(part.status == "completed" for part in live):
        status = "completed"
    else:
        status = "processing"
    if (refund.currency, refund.amount) != (currency, amount):
        report.differences.append(
            f"refund {reference} ({ids}): {currency} {amount} at {provider}, "
            f"{refund.currency} {refund.amount} in the ledger"
        )
    ledger_status = "processing" if refund.status == Refund.Status.REQUESTED else str(refund.status)
    if status != ledger_status:
        report.differences.append(
            f"refund {reference} ({ids}): {status} at {provider}, {refund.status} in the ledger"
        )
