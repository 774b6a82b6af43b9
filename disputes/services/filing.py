"""Filing: which claims an order allows now, and the buyer opening a dispute."""

from collections.abc import Sequence
from datetime import datetime

from django.conf import settings
from django.core.files import File
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from accounts.team import REFUSALS, Capability, team_allows, team_require
from disputes.error_codes import DisputeErrorCode
from disputes.models import OPEN_STATUSES, Dispute, DisputeParty, DisputeStatus, DisputeType
from disputes.services._engine import (
    dispute_move,
    dispute_tell,
    escrow_and_order_lock,
    evidence_create,
    evidence_files_store,
    uploads_removed_on_error,
    when,
)
from disputes.services.negotiation import proposal_create
from disputes.terms import OutcomeTerms, describe_terms, outcome_terms_check
from disputes.transitions import LIFECYCLE
from orders.models import Coverage, Order, OrderStatus
from orders.parties import order_supplier_staff
from orders.transitions import PAID_NOT_SHIPPED
from tradeassure.core import clock
from tradeassure.core.errors import Conflict, NotAllowed, ValidationFailed
from tradeassure.core.moments import local_text
from tradeassure.platform.events import outbox_batch

S = DisputeStatus
P = DisputeParty
OS = OrderStatus

QUALITY_TYPES = (DisputeType.QUALITY, DisputeType.QUANTITY_SHORT, DisputeType.DAMAGED)


def _claim_refusal(order: Order, dispute_type: str, now: datetime) -> str | None:
    """Why this claim type cannot be filed on this order now (None: it can).

    pre_shipment covers late or no shipment only, while the goods are unshipped and the
    shipment deadline has passed. post_delivery also covers non-delivery (shipped, receipt not
    confirmed) and quality/quantity/damage from shipment until the post-delivery claim window
    (30 days after confirmed receipt) closes.
    """
    if dispute_type not in DisputeType.values:
        return "Choose what went wrong."
    status = order.status
    if status == OS.DISPUTED:
        return "A dispute is already open for this order."
    if dispute_type == DisputeType.LATE_SHIPMENT:
        if status not in PAID_NOT_SHIPPED:
            return "A late-shipment claim is possible only while paid goods have not shipped."
        if not (order.is_late or order.shipment_deadline <= now):
            return (
                f"The shipment deadline ({local_text(order.shipment_deadline, timezone.get_current_timezone_name())}) has not "
                "passed yet."
            )
        return None
    if (
        dispute_type == DisputeType.QUALITY
        and status in PAID_NOT_SHIPPED
        and order.shipment_blocked_by_inspection
    ):
        # A pre-shipment inspection found the goods not conforming: a quality claim before
        # shipment, under either coverage (orders.inspection).
        return None
    if order.coverage != Coverage.POST_DELIVERY:
        return (
            "This order has pre-shipment coverage: it protects against late or no shipment "
            "only, not against delivery or quality problems."
        )
    if dispute_type == DisputeType.NOT_RECEIVED:
        if status != OS.SHIPPED:
            return "A non-delivery claim is possible once the goods shipped and before you confirm receipt."
        return None
    if status == OS.SHIPPED:
        return None
    if status == OS.DELIVERED:
        if order.completion_due_at is not None and order.completion_due_at <= now:
            return "The 30-day claim window after receipt has closed."
        return None
    return "Quality, quantity and damage claims are possible from shipment until the claim window closes."


def dispute_allowed_types(*, order: Order) -> list[tuple[str, str]]:
    """The claim types this order allows now, as (value, label) choices."""
    now = clock.now()
    return [
        (value, label)
        for value, label in DisputeType.choices
        if _claim_refusal(order, value, now) is None
    ]


def dispute_open_refusal(*, order: Order, user: User) -> str | None:
    """Why this user cannot file a dispute on this order now (None: they can)."""
    if not (user.is_authenticated and user.is_buyer) or (
        user.organisation_id != order.buyer_organisation_id
    ):
        return "Only the buyer can open a dispute."
    if not team_allows(user, Capability.DISPUTE):
        return REFUSALS[Capability.DISPUTE]
    if order.status == OS.DISPUTED:
        return "A dispute is already open for this order."
    if not dispute_allowed_types(order=order):
        return "No claim is possible on this order now."
    return None


@uploads_removed_on_error
@transaction.atomic
def dispute_open(
    *,
    order: Order,
    actor: User,
    type: str,
    description: str,
    terms: OutcomeTerms,
    evidence_files: Sequence[File] = (),
) -> Dispute:
    """The buyer files a claim: the order freezes (timers paused, escrow frozen) in the same
    transaction, the request becomes the first proposal, and the supplier has 3 days to answer."""
    # The claim window is judged at the moment the claim was sent, not after waiting for the
    # locks (a sweep closing the window may hold them for a moment).
    sent_at = clock.now()
    order = escrow_and_order_lock(order)
    refusal = dispute_open_refusal(order=order, user=actor)
    if refusal and refusal.startswith("Only the buyer"):
        raise NotAllowed(refusal, code="not_allowed")
    team_require(actor, Capability.DISPUTE)
    if Dispute.objects.filter(order=order, status__in=OPEN_STATUSES).exists():
        raise Conflict(
            "A dispute is already open for this order.", code=DisputeErrorCode.DISPUTE_ALREADY_OPEN
        )
    now = clock.now()
    errors: dict[str, list[str]] = {}
    claim_refusal = _claim_refusal(order, type, sent_at)
    if claim_refusal:
        errors["type"] = [claim_refusal]
    if not (description or "").strip():
        errors["description"] = ["Describe what went wrong, against the contract."]
    if type in QUALITY_TYPES and not [file for file in evidence_files if file is not None]:
        errors["files"] = ["Attach evidence: photos of the goods, a test or count report."]
    draft = Dispute(order=order, order_status_at_opening=order.status, currency=order.currency)
    try:
        terms = outcome_terms_check(dispute=draft, terms=terms)
    except ValidationFailed as error:
        for name, messages in error.fields.items():
            errors.setdefault(name, []).extend(messages)
    if errors:
        raise ValidationFailed("The dispute cannot be filed as it is.", fields=errors)
    stored = evidence_files_store(evidence_files)
    rules = settings.TRADE_ASSURANCE
    dispute = Dispute(
        order=order,
        type=type,
        status=S.AWAITING_SUPPLIER,
        description=description.strip(),
        requested_remedy=terms.remedy,
        requested_amount=terms.refund_amount,
        currency=order.currency,
        opened_by=actor,
        opened_at=now,
        order_status_at_opening=order.status,
        supplier_response_due_at=now + rules["DISPUTE_SUPPLIER_RESPONSE"],
        buyer_may_escalate_at=now + rules["DISPUTE_BUYER_MAY_ESCALATE_AFTER"],
        escalation_due_at=now + rules["DISPUTE_AUTO_ESCALATION"],
    )
    try:
        with transaction.atomic():
            dispute.save()
    except IntegrityError:
        raise Conflict(
            "A dispute is already open for this order.", code=DisputeErrorCode.DISPUTE_ALREADY_OPEN
        ) from None
    # One INSERT for every outbox row the filing queues (three events and the supplier's
    # emails), one dispatcher kick; the order and escrow are already locked above.
    with outbox_batch():
        _dispute_open_write(dispute, order=order, actor=actor, terms=terms, stored=stored)
    return dispute


def _dispute_open_write(
    dispute: Dispute, *, order: Order, actor: User, terms: OutcomeTerms, stored
) -> None:
    from orders.services import order_dispute_opened_locked

    order_dispute_opened_locked(
        order=order, actor=actor, note=f"Dispute {dispute.reference}: {dispute.get_type_display()}"
    )
    proposal_create(
        dispute=dispute, party=P.BUYER, actor=actor, terms=terms, message=dispute.description
    )
    evidence_create(dispute=dispute, party=P.BUYER, actor=actor, stored=stored)
    row = LIFECYCLE.rows_from("open", "")[0]
    dispute_move(
        dispute,
        row,
        party=P.BUYER,
        actor=actor,
        note=dispute.description,
        data={
            "type": dispute.type,
            "requested": describe_terms(terms, order.currency),
            "evidence_files": len(stored),
        },
    )
    dispute_tell(
        dispute,
        order_supplier_staff(dispute.order),
        f"the buyer opened a dispute — answer by {when(dispute.supplier_response_due_at)}",
        f"{dispute.get_type_display()}: {describe_terms(terms, order.currency)}. Accept, "
        "counter-propose or reject with evidence; without an answer the dispute escalates to a "
        "mediator.",
    )
