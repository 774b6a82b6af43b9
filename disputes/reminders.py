"""The dispute deadlines a party must meet before a sweep acts, as reminder sources
(tradeassure.platform.reminders): the supplier's answer, settling before automatic escalation,
evidence a mediator asked for, and an inspection fee.

The mediator's pick-up deadline (`pickup_due_at`) is staff's, not a party's, and acts on nothing
by itself, so it has no reminder."""

from collections.abc import Callable, Sequence
from typing import Any

from django.db.models import F, QuerySet
from django.urls import reverse

from accounts.models import User
from disputes.models import Dispute, DisputeParty, DisputeStatus, EvidenceRequest, Inspection
from disputes.transitions import BEFORE_ESCALATION, OPEN
from orders.models import Order
from orders.parties import orders_people
from tradeassure.platform.reminders import ReminderSource

P = DisputeParty
People = dict[int, list[User]]


def _order_of(row: Any) -> Order:
    """The row's order, knowing its supplier's organisation from the batch query's annotation."""
    order: Order = row.order if isinstance(row, Dispute) else row.dispute.order
    order.__dict__["supplier_organisation_id"] = row.__dict__["supplier_organisation_id"]
    return order


def _people(pick: Callable[[Any, list[User], list[User]], list[User]]) -> Callable[..., People]:
    """{row pk: users} for a batch, `pick(row, buyers, supplier staff)` choosing the side."""

    def people(rows: Sequence[Any]) -> People:
        orders = {row.pk: _order_of(row) for row in rows}
        sides = orders_people(orders.values())
        return {row.pk: pick(row, *sides[orders[row.pk].pk]) for row in rows}

    return people


def _reference(row: Any) -> str:
    dispute = row if isinstance(row, Dispute) else row.dispute
    return f"{dispute.reference} ({dispute.order.reference})"


def _url(row: Any) -> str:
    dispute_id = row.pk if isinstance(row, Dispute) else row.dispute_id
    return reverse("disputes:detail", args=[dispute_id])


def disputes_in(*statuses: str, **where: Any) -> Callable[[], QuerySet[Dispute]]:
    def rows() -> QuerySet[Dispute]:
        return (
            Dispute.objects.filter(status__in=statuses, **where)
            .select_related("order")
            .annotate(supplier_organisation_id=F("order__supplier__organisation_id"))
        )

    return rows


def open_evidence_requests() -> QuerySet[EvidenceRequest]:
    return (
        EvidenceRequest.objects.filter(
            state=EvidenceRequest.State.OPEN,
            requested_from__in=[P.BUYER, P.SUPPLIER],
            dispute__status__in=OPEN,
        )
        .select_related("dispute__order")
        .annotate(supplier_organisation_id=F("dispute__order__supplier__organisation_id"))
    )


def unpaid_inspection_fees() -> QuerySet[Inspection]:
    return (
        Inspection.objects.filter(state=Inspection.State.AWAITING_FEE, dispute__status__in=OPEN)
        .select_related("dispute__order")
        .annotate(supplier_organisation_id=F("dispute__order__supplier__organisation_id"))
    )


REMINDER_SOURCES = [
    ReminderSource(
        kind="dispute",
        deadline="supplier_response",
        due_field="supplier_response_due_at",
        rows=disputes_in(DisputeStatus.AWAITING_SUPPLIER, supplier_answered_at__isnull=True),
        people=_people(lambda dispute, buyers, staff: staff),
        title="answer the buyer's dispute by {due}",
        body="Answer the dispute by {due} ({left}); without an answer it goes to a mediator "
        "automatically.",
        reference=_reference,
        url=_url,
    ),
    ReminderSource(
        kind="dispute",
        deadline="escalation",
        due_field="escalation_due_at",
        rows=disputes_in(*BEFORE_ESCALATION),
        people=_people(lambda dispute, buyers, staff: [*buyers, *staff]),
        title="settle by {due}, or a mediator decides",
        body="If you have not agreed a solution by {due} ({left}), the dispute is escalated to "
        "a mediator automatically.",
        reference=_reference,
        url=_url,
    ),
    ReminderSource(
        kind="evidence_request",
        deadline="evidence",
        due_field="due_at",
        rows=open_evidence_requests,
        people=_people(
            lambda request, buyers, staff: buyers if request.requested_from == P.BUYER else staff
        ),
        title="send the evidence the mediator asked for by {due}",
        body="The mediator asked you for evidence by {due} ({left}). If it has not arrived by "
        "then, the mediator decides without it (a buyer's claim is cancelled).",
        reference=_reference,
        url=_url,
    ),
    ReminderSource(
        kind="inspection",
        deadline="fee",
        due_field="fee_due_at",
        rows=unpaid_inspection_fees,
        people=_people(lambda inspection, buyers, staff: buyers),
        title="pay the inspection fee by {due}",
        body="Pay the inspection fee by {due} ({left}); if it is not paid by then, the "
        "inspection is cancelled and the mediator decides on the evidence there is.",
        reference=_reference,
        url=_url,
    ),
]
