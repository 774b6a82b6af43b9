"""Every write to a dispute: filing, negotiation, escalation, mediation, inspection, the outcome.

Each service: locks the dispute row (`select_for_update(no_key=True)`, so rows that merely point
at it, e.g. a capture hook writing a timeline event, are not blocked) and, when it touches the order or its
money, the escrow and then the order after it (always dispute → escrow → order → inspection, the
order the orders services and the payments capture hook also use, so no two paths wait on each
other in opposite orders), checks the transition map in `disputes.transitions` and the actor's party
(`InvalidTransition` 409 / `NotAllowed` 403, nothing changed), applies the change, writes a
`DisputeEvent`, publishes a domain event to both organisations and notifies whoever must act next.

Money and the order move only through `orders.services` (the disputes hand-off) and
`payments.services`, with idempotency keys derived from the dispute, so a retried call never
moves money twice. `dispute_outcome_execute` is the ONE place an outcome is carried out.
"""

import dataclasses
import functools
import logging
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.files import File
from django.db import IntegrityError, transaction
from django.urls import reverse

from accounts.models import Organisation, User
from disputes.models import (
    OPEN_STATUSES,
    REQUESTABLE_REMEDIES,
    Dispute,
    DisputeEvent,
    DisputeMessage,
    DisputeParty,
    DisputeStatus,
    DisputeType,
    Evidence,
    EvidenceRequest,
    Inspection,
    Proposal,
    Remedy,
)
from disputes.transitions import Transition, label_for, transition_for, transitions_from
from orders.models import Coverage, Order, OrderStatus
from orders.transitions import PAID_NOT_SHIPPED
from tradeassure.core import clock
from tradeassure.core.errors import (
    Conflict,
    InvalidTransition,
    NotAllowed,
    NotFound,
    ValidationFailed,
)
from tradeassure.core.money import format_money, is_exact, round_money
from tradeassure.core.uploads import DOCUMENT_KINDS, upload_check, upload_delete, upload_store
from tradeassure.platform.events import event_publish, notify
from tradeassure.platform.models import SystemAlert

logger = logging.getLogger(__name__)
S = DisputeStatus
P = DisputeParty
OS = OrderStatus

SHIPPED_STATUSES = (OS.SHIPPED, OS.DELIVERED)
QUALITY_TYPES = (DisputeType.QUALITY, DisputeType.QUANTITY_SHORT, DisputeType.DAMAGED)
EVIDENCE_FOLDER = "disputes/evidence"


def _rules() -> dict:
    return settings.TRADE_ASSURANCE


def _dispute_rules() -> dict:
    return settings.DISPUTES


# ---------------------------------------------------------------------------------------------
# Who acts, and which claims an order allows.
# ---------------------------------------------------------------------------------------------


def party_of(*, dispute: Dispute, user: User | None) -> str | None:
    """The party a user acts as on this dispute (None: not involved). No user: the system."""
    if user is None:
        return P.SYSTEM
    if not user.is_authenticated or not user.is_active:
        return None
    order = dispute.order
    if user.organisation_id and user.organisation_id == order.buyer_organisation_id:
        return P.BUYER if user.is_buyer else None
    if user.organisation_id and user.organisation_id == order.supplier.organisation_id:
        return P.SUPPLIER if user.is_supplier_staff else None
    if user.is_staff and user.is_mediator:
        return P.MEDIATOR
    return None


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
                f"The shipment deadline ({order.shipment_deadline:%Y-%m-%d %H:%M} UTC) has not "
                "passed yet."
            )
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
    if order.status == OS.DISPUTED:
        return "A dispute is already open for this order."
    if not dispute_allowed_types(order=order):
        return "No claim is possible on this order now."
    return None


# ---------------------------------------------------------------------------------------------
# The engine: lock, check the map and the actor, move, record, tell.
# ---------------------------------------------------------------------------------------------


def _lock(dispute: Dispute | int) -> Dispute:
    pk = dispute if isinstance(dispute, int) else dispute.pk
    found = (
        Dispute.objects.select_for_update(of=("self",), no_key=True)
        .select_related(
            "order__supplier__organisation", "order__buyer_organisation", "order__current_version"
        )
        .filter(pk=pk)
        .first()
    )
    if found is None:
        raise NotFound("No such dispute.", code="dispute_not_found")
    return found


def _lock_order_and_escrow(order: Order | int) -> Order:
    """Lock the order's escrow, then the order (the order every money path and the payments
    capture hook use), so a dispute service never waits on them in the opposite order."""
    from orders.services import order_lock_for_update

    return order_lock_for_update(order=order if isinstance(order, int) else order.pk)


def _status_label(status: str) -> str:
    return S(status).label.lower() if status in S.values else status


def _check(dispute: Dispute, action: str, party: str | None) -> Transition:
    rows = transitions_from(action, dispute.status)
    if not rows:
        raise InvalidTransition(
            f"“{label_for(action)}” is not possible while the dispute is "
            f"{_status_label(dispute.status)}.",
            code="invalid_transition",
        )
    row = transition_for(dispute.status, action, party)
    if row is None:
        raise NotAllowed(f"You may not “{rows[0].label}” on this dispute.", code="not_allowed")
    return row


def _move(
    dispute: Dispute,
    row: Transition,
    *,
    party: str,
    actor: User | None,
    note: str = "",
    data: dict[str, Any] | None = None,
) -> DisputeEvent:
    """Apply a checked transition to a locked dispute: status, event row, domain event."""
    from_status = dispute.status
    dispute.status = row.target
    dispute.save()
    event = DisputeEvent.objects.create(
        dispute=dispute,
        action=row.action,
        actor_party=party,
        actor=actor,
        from_status=from_status,
        to_status=row.target,
        note=note,
        data=data or {},
        created_at=clock.now(),
    )
    event_publish(
        topic=f"dispute.{row.action}",
        subject_type="dispute",
        subject_id=dispute.pk,
        audience=[dispute.order.buyer_organisation_id, dispute.order.supplier.organisation_id],
        payload={
            "dispute": dispute.reference,
            "order": dispute.order.reference,
            "action": row.action,
            "from_status": from_status,
            "to_status": row.target,
            "actor": party,
            **(data or {}),
        },
    )
    return event


def _members(organisation_id: int, role: str) -> list[User]:
    return list(User.objects.filter(organisation_id=organisation_id, role=role, is_active=True))


def _buyers(dispute: Dispute) -> list[User]:
    return _members(dispute.order.buyer_organisation_id, User.Role.BUYER)


def _suppliers(dispute: Dispute) -> list[User]:
    return _members(dispute.order.supplier.organisation_id, User.Role.SUPPLIER_STAFF)


def _mediators(dispute: Dispute) -> list[User]:
    if dispute.mediator_id:
        return [dispute.mediator]
    return list(User.objects.filter(role=User.Role.MEDIATOR, is_staff=True, is_active=True))


def _party_users(dispute: Dispute, party: str) -> list[User]:
    return _buyers(dispute) if party == P.BUYER else _suppliers(dispute)


def _other(party: str) -> str:
    return P.SUPPLIER if party == P.BUYER else P.BUYER


def _tell(dispute: Dispute, users: Iterable[User], title: str, body: str = "") -> None:
    notify(
        users=users,
        title=f"{dispute.reference} ({dispute.order.reference}): {title}",
        body=body,
        url=dispute.get_absolute_url(),
    )


def _tell_mediators(dispute: Dispute, title: str, body: str = "") -> None:
    notify(
        users=_mediators(dispute),
        title=f"{dispute.reference}: {title}",
        body=body,
        url=reverse("admin:disputes_dispute_change", args=[dispute.pk]),
    )


def _held(order: Order) -> Decimal:
    from payments.selectors import escrow_summary

    return escrow_summary(escrow_reference=order.escrow_reference).held


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "—"


# ---------------------------------------------------------------------------------------------
# Evidence files.
# ---------------------------------------------------------------------------------------------


def _store_files(files: Sequence[File]) -> list[Any]:
    """Check EVERY file first (so a bad one refuses all), then store them privately."""
    limit = _dispute_rules()["MAX_FILES_PER_UPLOAD"]
    files = [file for file in files if file is not None]
    if len(files) > limit:
        raise ValidationFailed(
            f"Attach at most {limit} files at a time.",
            code="too_many_files",
            fields={"files": [f"Attach at most {limit} files at a time."]},
        )
    for file in files:
        try:
            upload_check(file=file, allowed_kinds=DOCUMENT_KINDS)
        except ValidationFailed as error:
            message = f"{_display_name(file)}: {error.message}"
            raise ValidationFailed(message, code=error.code, fields={"files": [message]}) from None
    stored = []
    try:
        for file in files:
            stored.append(upload_store(file=file, folder=EVIDENCE_FOLDER))
    except Exception:
        for item in stored:
            upload_delete(name=item.name)
        raise
    pending = _pending_uploads.get()
    if pending is not None:
        pending.extend(item.name for item in stored)
    return stored


def _display_name(file: File) -> str:
    name = str(getattr(file, "name", "") or "file")
    return name.replace("\\", "/").rsplit("/", 1)[-1][:80] or "file"


_pending_uploads: ContextVar[list[str] | None] = ContextVar(
    "disputes_pending_uploads", default=None
)


def _uploads_removed_on_error(service):
    """Files stored by a service that then fails (and rolls back) are deleted again."""

    @functools.wraps(service)
    def wrapper(*args, **kwargs):
        names: list[str] = []
        token = _pending_uploads.set(names)
        try:
            return service(*args, **kwargs)
        except BaseException:
            for name in names:
                upload_delete(name=name)
            raise
        finally:
            _pending_uploads.reset(token)

    return wrapper


def _evidence_create(
    *,
    dispute: Dispute,
    party: str,
    actor: User,
    stored: Sequence[Any],
    description: str = "",
    request: EvidenceRequest | None = None,
    inspection: Inspection | None = None,
) -> list[Evidence]:
    now = clock.now()
    return Evidence.objects.bulk_create(
        Evidence(
            dispute=dispute,
            party=party,
            uploaded_by=actor,
            description=description[:300],
            stored_name=item.name,
            original_name=item.original_name,
            content_type=item.content_type,
            size=item.size,
            uploaded_at=now,
            request=request,
            inspection=inspection,
        )
        for item in stored
    )


# ---------------------------------------------------------------------------------------------
# Remedies: what a proposal offers or a mediator decides.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutcomeTerms:
    """A remedy with its details. `refund_amount` for partial_refund; a new agreement has at
    least one of a new shipment deadline, a price reduction (on the goods) or a replacement."""

    remedy: str
    refund_amount: Decimal | None = None
    new_shipment_deadline: datetime | None = None
    price_reduction: Decimal | None = None
    replacement: bool = False
    terms_note: str = ""


def _goods_shipped(dispute: Dispute) -> bool:
    return dispute.order_status_at_opening in SHIPPED_STATUSES


def outcome_terms_check(
    *, dispute: Dispute, terms: OutcomeTerms, allow_no_refund: bool = False
) -> OutcomeTerms:
    """Validate a remedy against the order and the money held; raise ValidationFailed listing
    every problem. Returns the terms with amounts rounded to the currency."""
    order = dispute.order
    currency = order.currency
    errors: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    allowed = (*REQUESTABLE_REMEDIES, Remedy.NO_REFUND) if allow_no_refund else REQUESTABLE_REMEDIES
    if terms.remedy not in allowed:
        add("remedy", "Choose a remedy.")
        raise ValidationFailed("The remedy is not valid.", fields=errors)
    held = _held(order)
    refund = terms.refund_amount
    reduction = terms.price_reduction
    if terms.remedy == Remedy.FULL_REFUND and held <= 0:
        add("remedy", "Nothing is held in escrow for this order, so there is nothing to refund.")
    if terms.remedy == Remedy.PARTIAL_REFUND:
        if not _goods_shipped(dispute):
            add(
                "remedy",
                "A partial refund releases the rest to the supplier, so it needs shipped goods. "
                "Ask for a new agreement (a price reduction or a new deadline) instead.",
            )
        if refund is None or refund <= 0:
            add("refund_amount", "Enter the amount to refund (more than 0).")
        elif not is_exact(refund, currency):
            add(
                "refund_amount",
                f"{currency} amounts have no smaller unit than {round_money(Decimal(1), currency)}.",
            )
        elif refund > held:
            add(
                "refund_amount",
                f"Only {format_money(held, currency)} is held; the refund cannot be more.",
            )
    else:
        refund = None
    if terms.remedy == Remedy.NEW_AGREEMENT:
        if not (terms.new_shipment_deadline or reduction or terms.replacement):
            add(
                "remedy",
                "A new agreement needs a new shipment deadline, a price reduction or a replacement.",
            )
        if terms.new_shipment_deadline is not None:
            now = clock.now()
            latest = now + _rules()["MAX_SHIPMENT_DEADLINE_AHEAD"]
            if terms.new_shipment_deadline <= now:
                add("new_shipment_deadline", "The new shipment deadline must be in the future.")
            elif terms.new_shipment_deadline > latest:
                add(
                    "new_shipment_deadline",
                    f"The new deadline may be at most {_rules()['MAX_SHIPMENT_DEADLINE_AHEAD'].days} days ahead.",
                )
        if terms.replacement and not _goods_shipped(dispute):
            add("replacement", "A replacement needs goods that were shipped.")
        elif terms.replacement and terms.new_shipment_deadline is None:
            # The order goes back to ready to ship, so the supplier needs a new deadline.
            add(
                "new_shipment_deadline",
                "Give the date by which the supplier ships the replacement.",
            )
        if reduction is not None:
            if reduction <= 0 or not is_exact(reduction, currency):
                add("price_reduction", f"Enter a price reduction of more than 0 in {currency}.")
            elif reduction >= order.subtotal:
                add(
                    "price_reduction",
                    f"The reduction must be less than the goods' price "
                    f"({format_money(order.subtotal, currency)}); ask for a full refund instead.",
                )
    else:
        reduction = None
    if errors:
        raise ValidationFailed("The remedy is not valid.", fields=errors)
    if terms.remedy != Remedy.NEW_AGREEMENT:
        return OutcomeTerms(remedy=terms.remedy, refund_amount=refund, terms_note=terms.terms_note)
    return dataclasses.replace(terms, refund_amount=None, price_reduction=reduction)


def _reduced_contract_terms(order: Order, terms: OutcomeTerms):
    """The contract in force with the new agreement applied (deadline, reduced unit prices)."""
    from orders.services import contract_terms_of

    current = contract_terms_of(order.current_version)
    new = current
    if terms.new_shipment_deadline is not None:
        new = dataclasses.replace(new, shipment_deadline=terms.new_shipment_deadline)
    if terms.price_reduction:
        # Spread the reduction over the unit prices in proportion (rounded to the minor unit);
        # the exact new total is what the executed agreement records and refunds against.
        factor = (order.subtotal - terms.price_reduction) / order.subtotal
        minimum = round_money(Decimal("0.01"), order.currency) or Decimal(1)
        items = [
            dataclasses.replace(
                item, unit_price=max(minimum, round_money(item.unit_price * factor, order.currency))
            )
            for item in current.items
        ]
        new = dataclasses.replace(new, items=items)
    if terms.replacement or terms.terms_note:
        extra = []
        if terms.replacement:
            extra.append("Replacement goods to be shipped by the supplier")
        if terms.terms_note:
            extra.append(terms.terms_note.strip())
        customisation = (current.customisation + "\n" if current.customisation else "") + (
            "; ".join(extra)
        )
        new = dataclasses.replace(new, customisation=customisation[:2000])
    return new


def outcome_preview(*, dispute: Dispute, terms: OutcomeTerms) -> dict[str, Decimal]:
    """What an outcome does to the money: refund, release, and the new contract total."""
    from orders.services import contract_totals

    order = dispute.order
    held = _held(order)
    if terms.remedy == Remedy.FULL_REFUND:
        return {"refund": held, "release": Decimal(0), "new_total": order.total}
    if terms.remedy == Remedy.PARTIAL_REFUND:
        refund = terms.refund_amount or Decimal(0)
        return {"refund": refund, "release": held - refund, "new_total": order.total}
    if terms.remedy == Remedy.NO_REFUND:
        release = held if _goods_shipped(dispute) else Decimal(0)
        return {"refund": Decimal(0), "release": release, "new_total": order.total}
    new_total = order.total
    if terms.price_reduction:
        new_total = contract_totals(terms=_reduced_contract_terms(order, terms)).total
    refund = max(Decimal(0), held - new_total) if terms.price_reduction else Decimal(0)
    return {"refund": refund, "release": Decimal(0), "new_total": new_total}


def describe_terms(terms: OutcomeTerms | Proposal, currency: str) -> str:
    """One line a person reads: "Partial refund of USD 200.00"."""
    remedy = terms.remedy
    if remedy == Remedy.FULL_REFUND:
        return "Full refund of what is held"
    if remedy == Remedy.PARTIAL_REFUND:
        return f"Partial refund of {format_money(terms.refund_amount or 0, currency)}"
    if remedy == Remedy.NO_REFUND:
        return "No refund"
    parts = []
    if terms.new_shipment_deadline:
        parts.append(f"new shipment deadline {terms.new_shipment_deadline:%Y-%m-%d}")
    if terms.price_reduction:
        parts.append(f"price reduced by {format_money(terms.price_reduction, currency)}")
    if terms.replacement:
        parts.append("replacement goods")
    text = "New agreement: " + ", ".join(parts)
    if terms.terms_note:
        text += f" ({terms.terms_note})"
    return text


def _terms_of(proposal: Proposal) -> OutcomeTerms:
    return OutcomeTerms(
        remedy=proposal.remedy,
        refund_amount=proposal.refund_amount,
        new_shipment_deadline=proposal.new_shipment_deadline,
        price_reduction=proposal.price_reduction,
        replacement=proposal.replacement,
        terms_note=proposal.terms_note,
    )


def _proposal_create(
    *, dispute: Dispute, party: str, actor: User, terms: OutcomeTerms, message: str
) -> Proposal:
    now = clock.now()
    Proposal.objects.filter(dispute=dispute, state=Proposal.State.OPEN).update(
        state=Proposal.State.SUPERSEDED, answered_at=now, answered_by=actor
    )
    return Proposal.objects.create(
        dispute=dispute,
        party=party,
        proposed_by=actor,
        remedy=terms.remedy,
        refund_amount=terms.refund_amount,
        new_shipment_deadline=terms.new_shipment_deadline,
        price_reduction=terms.price_reduction,
        replacement=terms.replacement,
        terms_note=terms.terms_note[:2000],
        message=message,
        created_at=now,
    )


# ---------------------------------------------------------------------------------------------
# Filing.
# ---------------------------------------------------------------------------------------------


@_uploads_removed_on_error
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
    from orders.services import order_dispute_opened

    order = _lock_order_and_escrow(order)
    refusal = dispute_open_refusal(order=order, user=actor)
    if refusal and refusal.startswith("Only the buyer"):
        raise NotAllowed(refusal, code="not_allowed")
    if Dispute.objects.filter(order=order, status__in=OPEN_STATUSES).exists():
        raise Conflict("A dispute is already open for this order.", code="dispute_already_open")
    now = clock.now()
    errors: dict[str, list[str]] = {}
    claim_refusal = _claim_refusal(order, type, now)
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
    stored = _store_files(evidence_files)
    rules = _rules()
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
            "A dispute is already open for this order.", code="dispute_already_open"
        ) from None
    order_dispute_opened(
        order=order, actor=actor, note=f"Dispute {dispute.reference}: {dispute.get_type_display()}"
    )
    _proposal_create(
        dispute=dispute, party=P.BUYER, actor=actor, terms=terms, message=dispute.description
    )
    _evidence_create(dispute=dispute, party=P.BUYER, actor=actor, stored=stored)
    row = _check_open()
    _move(
        dispute,
        row,
        party=P.BUYER,
        actor=actor,
        note=dispute.description,
        data={
            "type": type,
            "requested": describe_terms(terms, order.currency),
            "evidence_files": len(stored),
        },
    )
    _tell(
        dispute,
        _suppliers(dispute),
        f"the buyer opened a dispute — answer by {_when(dispute.supplier_response_due_at)}",
        f"{dispute.get_type_display()}: {describe_terms(terms, order.currency)}. Accept, "
        "counter-propose or reject with evidence; without an answer the dispute escalates to a "
        "mediator.",
    )
    return dispute


def _check_open() -> Transition:
    return transitions_from("open", "")[0]


# ---------------------------------------------------------------------------------------------
# Negotiation.
# ---------------------------------------------------------------------------------------------


def _mark_supplier_answered(dispute: Dispute) -> None:
    if dispute.supplier_answered_at is None:
        dispute.supplier_answered_at = clock.now()
        dispute.supplier_response_due_at = None


@transaction.atomic
def dispute_message_send(*, dispute: Dispute, actor: User, body: str) -> DisputeMessage:
    """A message on the dispute (parties or the mediator); the others are told."""
    dispute = _lock(dispute)
    party = party_of(dispute=dispute, user=actor)
    row = _check(dispute, "message", party)
    body = (body or "").strip()
    if not body:
        raise ValidationFailed("Write a message.", fields={"body": ["Write a message."]})
    message = DisputeMessage.objects.create(
        dispute=dispute, author=actor, author_party=party, body=body[:5000], created_at=clock.now()
    )
    _move(dispute, row, party=party, actor=actor, note=body[:500])
    title = f"new message from the {P(party).label.lower()}"
    for other in {P.BUYER, P.SUPPLIER} - {party}:
        _tell(dispute, _party_users(dispute, other), title, body[:500])
    if party != P.MEDIATOR and dispute.mediator_id:
        _tell_mediators(dispute, title, body[:500])
    return message


@transaction.atomic
def dispute_propose(
    *, dispute: Dispute, actor: User, terms: OutcomeTerms, message: str = ""
) -> Proposal:
    """A party offers a remedy (a supplier's counter-proposal answers the claim). Replaces any
    open proposal; the other side accepts it to settle at once."""
    dispute = _lock(dispute)
    party = party_of(dispute=dispute, user=actor)
    row = _check(dispute, "propose", party)
    terms = outcome_terms_check(dispute=dispute, terms=terms)
    proposal = _proposal_create(
        dispute=dispute, party=party, actor=actor, terms=terms, message=(message or "").strip()
    )
    if party == P.SUPPLIER:
        _mark_supplier_answered(dispute)
    text = describe_terms(terms, dispute.currency)
    _move(
        dispute,
        row,
        party=party,
        actor=actor,
        note=message,
        data={"proposal": proposal.pk, "terms": text},
    )
    _tell(
        dispute,
        _party_users(dispute, _other(party)),
        f"the {P(party).label.lower()} proposes: {text}",
        "Accept it to settle the dispute now, or answer with your own proposal.",
    )
    return proposal


@_uploads_removed_on_error
@transaction.atomic
def dispute_reject(
    *, dispute: Dispute, actor: User, message: str, evidence_files: Sequence[File] = ()
) -> Dispute:
    """A party rejects the other side's open proposal (the supplier may reject the claim itself),
    saying why and optionally attaching evidence."""
    dispute = _lock(dispute)
    party = party_of(dispute=dispute, user=actor)
    row = _check(dispute, "reject", party)
    message = (message or "").strip()
    if not message:
        raise ValidationFailed(
            "Say why you reject it.", fields={"message": ["Say why you reject it."]}
        )
    proposal = dispute.proposals.filter(state=Proposal.State.OPEN).first()
    if proposal is None or proposal.party == party:
        raise InvalidTransition(
            "There is no proposal from the other side to reject.", code="no_proposal"
        )
    stored = _store_files(evidence_files)
    now = clock.now()
    Proposal.objects.filter(pk=proposal.pk).update(
        state=Proposal.State.REJECTED, answered_at=now, answered_by=actor
    )
    _evidence_create(dispute=dispute, party=party, actor=actor, stored=stored)
    if party == P.SUPPLIER:
        _mark_supplier_answered(dispute)
    _move(
        dispute,
        row,
        party=party,
        actor=actor,
        note=message,
        data={"proposal": proposal.pk, "evidence_files": len(stored)},
    )
    body = message[:500]
    if party == P.SUPPLIER and dispute.status in (S.AWAITING_SUPPLIER, S.NEGOTIATING):
        body += (
            f"\n\nMake a new proposal, or escalate to a mediator from "
            f"{_when(dispute.buyer_may_escalate_at)}."
        )
    _tell(
        dispute,
        _party_users(dispute, _other(party)),
        f"the {P(party).label.lower()} rejected the proposal",
        body,
    )
    return dispute


@transaction.atomic
def dispute_accept(*, dispute: Dispute, actor: User, proposal_id: int) -> Dispute:
    """Accept the other side's open proposal: the dispute settles at once (the outcome runs)."""
    dispute = _lock(dispute)
    party = party_of(dispute=dispute, user=actor)
    _check(dispute, "accept", party)
    proposal = (
        Proposal.objects.select_for_update(no_key=True)
        .filter(dispute=dispute, pk=proposal_id)
        .first()
    )
    if proposal is None:
        raise NotFound("No such proposal.", code="proposal_not_found")
    if proposal.state != Proposal.State.OPEN:
        raise Conflict(
            "This proposal is no longer open (it was answered or replaced); look at the latest.",
            code="proposal_not_open",
        )
    if proposal.party == party:
        raise InvalidTransition(
            "You made this proposal; the other side must accept it.", code="own_proposal"
        )
    Proposal.objects.filter(pk=proposal.pk).update(
        state=Proposal.State.ACCEPTED, answered_at=clock.now(), answered_by=actor
    )
    if party == P.SUPPLIER and dispute.supplier_answered_at is None:
        Dispute.objects.filter(pk=dispute.pk).update(supplier_answered_at=clock.now())
    return dispute_outcome_execute(
        dispute=dispute,
        actor=actor,
        terms=_terms_of(proposal),
        via="agreement",
        reason=f"The {P(party).label.lower()} accepted the {P(proposal.party).label.lower()}'s proposal.",
        action="accept",
    )


@_uploads_removed_on_error
@transaction.atomic
def dispute_evidence_add(
    *, dispute: Dispute, actor: User, files: Sequence[File], description: str = ""
) -> list[Evidence]:
    """A party adds evidence; it answers any open evidence request to that party."""
    dispute = _lock(dispute)
    party = party_of(dispute=dispute, user=actor)
    row = _check(dispute, "add_evidence", party)
    if not [file for file in files if file is not None]:
        raise ValidationFailed("Choose at least one file.", fields={"files": ["Choose a file."]})
    stored = _store_files(files)
    request = (
        EvidenceRequest.objects.select_for_update(no_key=True)
        .filter(dispute=dispute, requested_from=party, state=EvidenceRequest.State.OPEN)
        .order_by("due_at")
        .first()
    )
    evidence = _evidence_create(
        dispute=dispute,
        party=party,
        actor=actor,
        stored=stored,
        description=description,
        request=request,
    )
    data: dict[str, Any] = {"evidence_files": len(stored)}
    if request is not None:
        EvidenceRequest.objects.filter(pk=request.pk).update(
            state=EvidenceRequest.State.FULFILLED, answered_at=clock.now()
        )
        data["evidence_request"] = request.pk
    _move(dispute, row, party=party, actor=actor, note=description, data=data)
    title = f"the {P(party).label.lower()} added evidence"
    _tell(dispute, _party_users(dispute, _other(party)), title, description)
    if dispute.mediator_id:
        _tell_mediators(dispute, title, description)
    return evidence


# ---------------------------------------------------------------------------------------------
# Withdrawal and escalation.
# ---------------------------------------------------------------------------------------------


@transaction.atomic
def dispute_withdraw(*, dispute: Dispute, actor: User, reason: str = "") -> Dispute:
    """Before escalation the buyer may drop the claim: the dispute is cancelled, the order resumes."""
    dispute = _lock(dispute)
    party = party_of(dispute=dispute, user=actor)
    row = _check(dispute, "withdraw", party)
    _close(dispute, row, party=party, actor=actor, note=reason or "Withdrawn by the buyer.")
    _tell(
        dispute, _suppliers(dispute), "the buyer withdrew the dispute — the order continues", reason
    )
    return dispute


def _close(dispute: Dispute, row: Transition, *, party: str, actor: User | None, note: str) -> None:
    """Cancel a dispute: the order resumes where it was, money stays held, timers restart."""
    from orders.services import DisputeOutcome, order_dispute_resolved

    _lock_order_and_escrow(dispute.order_id)
    order_dispute_resolved(
        order=dispute.order,
        actor=actor if party != P.SYSTEM else None,
        outcome=DisputeOutcome.RESUME,
        dispute_reference=dispute.reference,
        note=f"Dispute {dispute.reference} cancelled: {note}",
    )
    _end_open_items(dispute)
    _cancel_inspections(dispute, settle_fault=False)
    dispute.outcome_reason = note
    dispute.closed_at = clock.now()
    dispute.closed_by = actor
    _clear_timers(dispute)
    _move(dispute, row, party=party, actor=actor, note=note)


def _clear_timers(dispute: Dispute) -> None:
    dispute.supplier_response_due_at = None
    dispute.escalation_due_at = None
    dispute.pickup_due_at = None


def _end_open_items(dispute: Dispute) -> None:
    now = clock.now()
    Proposal.objects.filter(dispute=dispute, state=Proposal.State.OPEN).update(
        state=Proposal.State.CLOSED, answered_at=now
    )
    EvidenceRequest.objects.filter(dispute=dispute, state=EvidenceRequest.State.OPEN).update(
        state=EvidenceRequest.State.CLOSED, answered_at=now
    )


def _escalate(
    dispute: Dispute, row: Transition, *, party: str, actor: User | None, note: str
) -> None:
    now = clock.now()
    dispute.escalated_at = now
    dispute.escalated_by = party
    dispute.supplier_response_due_at = None
    dispute.escalation_due_at = None
    dispute.pickup_due_at = clock.add_working_days(now, _rules()["MEDIATOR_PICKUP_WORKING_DAYS"])
    _move(
        dispute,
        row,
        party=party,
        actor=actor,
        note=note,
        data={"pickup_due_at": dispute.pickup_due_at.isoformat()},
    )
    _tell_mediators(
        dispute,
        f"escalated — pick up by {_when(dispute.pickup_due_at)}",
        note,
    )
    for users in (_buyers(dispute), _suppliers(dispute)):
        _tell(
            dispute,
            users,
            "escalated to a mediator",
            f"{note} A mediator picks it up within {_rules()['MEDIATOR_PICKUP_WORKING_DAYS']} "
            "working days; you may still settle between yourselves until they decide.",
        )


@transaction.atomic
def dispute_escalate(*, dispute: Dispute, actor: User, note: str = "") -> Dispute:
    """The buyer asks for a mediator, from day 4 (after the supplier's 3 days)."""
    dispute = _lock(dispute)
    party = party_of(dispute=dispute, user=actor)
    row = _check(dispute, "escalate", party)
    if dispute.buyer_may_escalate_at and clock.now() < dispute.buyer_may_escalate_at:
        raise InvalidTransition(
            f"The supplier has until {_when(dispute.buyer_may_escalate_at)} to answer; you may "
            "escalate from then.",
            code="too_early_to_escalate",
        )
    _escalate(
        dispute, row, party=party, actor=actor, note=note or "The buyer escalated the dispute."
    )
    return dispute


def _auto_escalation_reason(dispute: Dispute, now: datetime) -> str | None:
    if (
        dispute.supplier_answered_at is None
        and dispute.supplier_response_due_at is not None
        and dispute.supplier_response_due_at <= now
    ):
        return "The supplier did not answer within the response window."
    if dispute.escalation_due_at is not None and dispute.escalation_due_at <= now:
        return "The dispute was not settled in time."
    return None


@transaction.atomic
def dispute_auto_escalate(*, dispute: Dispute | int) -> bool:
    """System: escalate when the supplier never answered, or on day 8. False if nothing was due."""
    dispute = _lock(dispute)
    if dispute.status not in (S.AWAITING_SUPPLIER, S.NEGOTIATING):
        return False
    reason = _auto_escalation_reason(dispute, clock.now())
    if reason is None:
        return False
    row = _check(dispute, "auto_escalate", P.SYSTEM)
    _escalate(dispute, row, party=P.SYSTEM, actor=None, note=reason)
    return True


def _due_ids(queryset, batch: int | None = None) -> list[int]:
    batch = batch or _rules()["SWEEP_BATCH_SIZE"]
    return list(queryset.order_by("pk").values_list("pk", flat=True)[:batch])


def _sweep(ids: Iterable[int], service) -> int:
    """Run a per-row service in its own transaction; one failure stops no other row."""
    done = 0
    for pk in ids:
        try:
            if service(pk):
                done += 1
        except Exception:
            logger.exception("Dispute sweep failed for %s", pk)
    return done


def disputes_sweep_escalations() -> int:
    """Beat: escalate disputes the supplier never answered, or unresolved on day 8."""
    from django.db.models import Q

    now = clock.now()
    due = Dispute.objects.filter(status__in=(S.AWAITING_SUPPLIER, S.NEGOTIATING)).filter(
        Q(supplier_response_due_at__lte=now, supplier_answered_at__isnull=True)
        | Q(escalation_due_at__lte=now)
    )
    return _sweep(_due_ids(due), lambda pk: dispute_auto_escalate(dispute=pk))


# ---------------------------------------------------------------------------------------------
# Mediation.
# ---------------------------------------------------------------------------------------------


def _require_mediator(dispute: Dispute, actor: User, *, assigned: bool = True) -> str:
    party = party_of(dispute=dispute, user=actor)
    if party != P.MEDIATOR or not actor.has_perm("disputes.mediate_dispute"):
        raise NotAllowed("Only mediators can do this.", code="not_allowed")
    if assigned and dispute.mediator_id != actor.pk:
        raise NotAllowed(
            "This dispute is assigned to another mediator; take it over first.",
            code="not_assigned",
        )
    return party


@transaction.atomic
def dispute_assign(*, dispute: Dispute, actor: User) -> Dispute:
    """A mediator picks the dispute up (or takes it over): it is under their review."""
    dispute = _lock(dispute)
    party = _require_mediator(dispute, actor, assigned=False)
    row = _check(dispute, "assign", party)
    if dispute.mediator_id == actor.pk:
        raise InvalidTransition("This dispute is already assigned to you.", code="already_assigned")
    previous = dispute.mediator
    dispute.mediator = actor
    dispute.assigned_at = clock.now()
    dispute.pickup_due_at = None
    _move(
        dispute,
        row,
        party=party,
        actor=actor,
        data={"mediator": actor.email, "previous": previous.email if previous else None},
    )
    for users in (_buyers(dispute), _suppliers(dispute)):
        _tell(
            dispute,
            users,
            "a mediator is reviewing the dispute",
            "The mediator may ask you for evidence; you may still settle between yourselves.",
        )
    return dispute


@transaction.atomic
def dispute_request_evidence(
    *, dispute: Dispute, actor: User, requested_from: str, note: str, due_at: datetime
) -> EvidenceRequest:
    """Ask one party for evidence by a date. Missed by the buyer: the dispute is cancelled;
    missed by the supplier: the mediator decides on what is there."""
    dispute = _lock(dispute)
    party = _require_mediator(dispute, actor)
    row = _check(dispute, "request_evidence", party)
    errors: dict[str, list[str]] = {}
    if requested_from not in (P.BUYER, P.SUPPLIER):
        errors["requested_from"] = ["Ask the buyer or the supplier."]
    if not (note or "").strip():
        errors["note"] = ["Say what evidence you need."]
    now = clock.now()
    if due_at is None or due_at <= now:
        errors["due_at"] = ["The due date must be in the future."]
    elif due_at > now + timedelta(days=30):
        errors["due_at"] = ["Give at most 30 days."]
    if errors:
        raise ValidationFailed("The request is not valid.", fields=errors)
    request = EvidenceRequest.objects.create(
        dispute=dispute,
        requested_from=requested_from,
        note=note.strip(),
        due_at=due_at,
        requested_by=actor,
        created_at=now,
    )
    _move(
        dispute,
        row,
        party=party,
        actor=actor,
        note=note,
        data={"requested_from": requested_from, "due_at": due_at.isoformat()},
    )
    consequence = (
        "If you do not provide it in time, the dispute is cancelled and the order continues."
        if requested_from == P.BUYER
        else "If you do not provide it in time, the mediator decides on the evidence there is."
    )
    _tell(
        dispute,
        _party_users(dispute, requested_from),
        f"the mediator asks you for evidence by {_when(due_at)}",
        f"{note.strip()}\n\n{consequence}",
    )
    return request


@transaction.atomic
def evidence_request_expire(*, request: EvidenceRequest | int) -> bool:
    """System: an evidence request passed its due date unanswered. False if nothing was due."""
    pk = request if isinstance(request, int) else request.pk
    dispute_id = EvidenceRequest.objects.filter(pk=pk).values_list("dispute_id", flat=True).first()
    if dispute_id is None:
        return False
    dispute = _lock(dispute_id)
    request = EvidenceRequest.objects.select_for_update(no_key=True).get(pk=pk)
    if request.state != EvidenceRequest.State.OPEN or request.due_at > clock.now():
        return False
    EvidenceRequest.objects.filter(pk=pk).update(
        state=EvidenceRequest.State.MISSED, answered_at=clock.now()
    )
    if request.requested_from == P.BUYER:
        row = _check(dispute, "evidence_missed_by_buyer", P.SYSTEM)
        note = "The buyer did not provide the evidence the mediator asked for in time."
        _close(dispute, row, party=P.SYSTEM, actor=None, note=note)
        for users in (_buyers(dispute), _suppliers(dispute)):
            _tell(dispute, users, "dispute cancelled: the buyer's evidence did not arrive", note)
        _tell_mediators(dispute, "cancelled: the buyer missed the evidence due date")
        return True
    row = _check(dispute, "evidence_missed_by_supplier", P.SYSTEM)
    note = "The supplier did not provide the evidence in time: decide on what is there."
    dispute.flagged_for_decision = True
    dispute.flag_reason = note
    _move(dispute, row, party=P.SYSTEM, actor=None, note=note, data={"evidence_request": pk})
    _tell_mediators(dispute, "the supplier missed the evidence due date — decide", note)
    _tell(dispute, _suppliers(dispute), "you missed the evidence due date", note)
    return True


def disputes_sweep_evidence_requests() -> int:
    """Beat: enforce evidence due dates."""
    due = EvidenceRequest.objects.filter(state=EvidenceRequest.State.OPEN, due_at__lte=clock.now())
    return _sweep(_due_ids(due), lambda pk: evidence_request_expire(request=pk))


# ---------------------------------------------------------------------------------------------
# Inspection.
# ---------------------------------------------------------------------------------------------


def inspection_fee_default(currency: str) -> Decimal:
    return _dispute_rules()["INSPECTION_FEE"].get(currency, Decimal("300.00"))


@transaction.atomic
def dispute_order_inspection(
    *,
    dispute: Dispute,
    actor: User,
    organisation: Organisation,
    instructions: str,
    fee_amount: Decimal,
) -> Inspection:
    """A mediator orders a third-party inspection; the buyer pays the fee up front."""
    dispute = _lock(dispute)
    party = _require_mediator(dispute, actor)
    row = _check(dispute, "order_inspection", party)
    currency = dispute.currency
    errors: dict[str, list[str]] = {}
    if organisation is None or organisation.kind != Organisation.Kind.INSPECTION:
        errors["organisation"] = ["Choose an inspection company."]
    if not (instructions or "").strip():
        errors["instructions"] = ["Say what the inspector must check."]
    if fee_amount is None or fee_amount <= 0 or not is_exact(fee_amount, currency):
        errors["fee_amount"] = [f"Enter the fee in {currency} (more than 0)."]
    if errors:
        raise ValidationFailed("The inspection order is not valid.", fields=errors)
    now = clock.now()
    inspection = Inspection.objects.create(
        dispute=dispute,
        organisation=organisation,
        instructions=instructions.strip(),
        fee_amount=fee_amount,
        currency=currency,
        ordered_by=actor,
        ordered_at=now,
        fee_due_at=now + _dispute_rules()["INSPECTION_FEE_PAYMENT_WINDOW"],
    )
    _move(
        dispute,
        row,
        party=party,
        actor=actor,
        note=instructions,
        data={
            "inspection": inspection.pk,
            "organisation": organisation.name,
            "fee": str(fee_amount),
        },
    )
    _tell(
        dispute,
        _buyers(dispute),
        f"pay the inspection fee ({format_money(fee_amount, currency)}) by {_when(inspection.fee_due_at)}",
        "The mediator ordered a third-party inspection. The fee is refunded to you and charged to "
        "the supplier if the supplier is at fault. Without the fee the mediator decides on the "
        "evidence there is.",
    )
    _tell(
        dispute, _suppliers(dispute), f"the mediator ordered an inspection by {organisation.name}"
    )
    return inspection


def dispute_inspection_fee_pay(*, inspection: Inspection, actor: User, method: str) -> Any:
    """Start (or reopen) the buyer's payment of the inspection fee; returns the Payment."""
    from payments.services import payment_start

    with transaction.atomic():
        dispute = _lock(inspection.dispute_id)
        # escrow → inspection, the order the capture hook uses
        _lock_order_and_escrow(dispute.order_id)
        inspection = Inspection.objects.select_for_update(no_key=True).get(pk=inspection.pk)
        if party_of(dispute=dispute, user=actor) != P.BUYER:
            raise NotAllowed("Only the buyer pays the inspection fee.", code="not_allowed")
        if inspection.state != Inspection.State.AWAITING_FEE:
            raise InvalidTransition(
                "This inspection fee is not waiting for payment.", code="fee_not_due"
            )
        payment = payment_start(
            escrow_reference=dispute.order.escrow_reference,
            purpose="inspection_fee",
            amount=inspection.fee_amount,
            currency=inspection.currency,
            method=method,
            payer_organisation=dispute.order.buyer_organisation,
            idempotency_key=f"dispute:{dispute.pk}:inspection:{inspection.pk}:fee:{method}",
            return_url=dispute.get_absolute_url(),
        )
        Inspection.objects.filter(pk=inspection.pk).update(fee_payment=payment)
        return payment


def dispute_inspection_fee_captured(*, payment: Any) -> None:
    """PAYMENT_CAPTURED_HOOKS entry: the buyer's inspection fee arrived.

    Runs in the payments' capture transaction (the escrow is locked), so it locks only the
    inspection row (escrow → inspection, the same order the outcome uses) and never raises for
    money that has arrived: a fee for an inspection that no longer waits becomes a staff alert.
    """
    if getattr(payment, "purpose", "") != "inspection_fee":
        return
    inspection = (
        Inspection.objects.select_for_update(of=("self",), no_key=True)
        .select_related(
            "dispute__order__supplier__organisation", "dispute__order__buyer_organisation"
        )
        .filter(fee_payment_id=payment.pk)
        .first()
    )
    if inspection is None:
        inspection = (
            Inspection.objects.select_for_update(of=("self",), no_key=True)
            .select_related(
                "dispute__order__supplier__organisation", "dispute__order__buyer_organisation"
            )
            .filter(
                dispute__order_id=_order_id_of(payment),
                state=Inspection.State.AWAITING_FEE,
                fee_amount=payment.amount,
            )
            .first()
        )
    if inspection is None or inspection.state != Inspection.State.AWAITING_FEE:
        if (
            inspection is not None
            and inspection.fee_payment_id == payment.pk
            and inspection.fee_paid_at
        ):
            return  # the same capture seen twice
        SystemAlert.objects.create(
            source="disputes",
            message=(
                f"Inspection fee payment {payment.pk} ({format_money(payment.amount, payment.currency)}) "
                "arrived for an inspection that no longer waits for it; return it to the buyer."
            ),
            created_at=clock.now(),
        )
        return
    dispute = inspection.dispute
    now = clock.now()
    Inspection.objects.filter(pk=inspection.pk).update(
        state=Inspection.State.ASSIGNED, fee_payment=payment, fee_paid_at=now, fee_due_at=None
    )
    row = transition_for(dispute.status, "inspection_fee_paid", P.SYSTEM)
    DisputeEvent.objects.create(
        dispute=dispute,
        action=row.action if row else "inspection_fee_paid",
        actor_party=P.SYSTEM,
        from_status=dispute.status,
        to_status=dispute.status,
        note=f"Inspection fee {format_money(payment.amount, payment.currency)} paid.",
        data={"inspection": inspection.pk, "payment": payment.pk},
        created_at=now,
    )
    event_publish(
        topic="dispute.inspection_fee_paid",
        subject_type="dispute",
        subject_id=dispute.pk,
        audience=[dispute.order.buyer_organisation_id, dispute.order.supplier.organisation_id],
        payload={"dispute": dispute.reference, "inspection": inspection.pk},
    )
    notify(
        users=_members(inspection.organisation_id, User.Role.INSPECTOR),
        title=f"New inspection: {dispute.order.reference} ({dispute.get_type_display()})",
        body=inspection.instructions[:500],
        url=inspection.get_absolute_url(),
    )


def _order_id_of(payment: Any) -> int | None:
    reference = str(payment.escrow.reference)
    try:
        return int(reference.split(":", 1)[1]) if reference.startswith("order:") else None
    except ValueError:
        return None


@transaction.atomic
def inspection_fee_expire(*, inspection: Inspection | int) -> bool:
    """System: the buyer did not pay the fee in time; the mediator decides on what is there."""
    pk = inspection if isinstance(inspection, int) else inspection.pk
    dispute_id = Inspection.objects.filter(pk=pk).values_list("dispute_id", flat=True).first()
    if dispute_id is None:
        return False
    dispute = _lock(dispute_id)
    inspection = Inspection.objects.select_for_update(no_key=True).get(pk=pk)
    if (
        inspection.state != Inspection.State.AWAITING_FEE
        or inspection.fee_due_at is None
        or inspection.fee_due_at > clock.now()
    ):
        return False
    Inspection.objects.filter(pk=pk).update(state=Inspection.State.CANCELLED, fee_due_at=None)
    note = "The buyer did not pay the inspection fee in time: decide on the evidence there is."
    dispute.flagged_for_decision = True
    dispute.flag_reason = note
    row = _check(dispute, "inspection_fee_missed", P.SYSTEM)
    _move(dispute, row, party=P.SYSTEM, actor=None, note=note, data={"inspection": pk})
    _tell_mediators(dispute, "inspection fee not paid — decide", note)
    _tell(dispute, _buyers(dispute), "the inspection was cancelled: its fee was not paid", note)
    return True


def disputes_sweep_inspection_fees() -> int:
    due = Inspection.objects.filter(
        state=Inspection.State.AWAITING_FEE, fee_due_at__lte=clock.now()
    )
    return _sweep(_due_ids(due), lambda pk: inspection_fee_expire(inspection=pk))


@_uploads_removed_on_error
@transaction.atomic
def inspection_report_submit(
    *, inspection: Inspection, actor: User, verdict: str, findings: str, files: Sequence[File]
) -> Inspection:
    """The inspector records the report and the verdict; the mediator reviews and decides."""
    dispute_id = (
        Inspection.objects.filter(pk=inspection.pk).values_list("dispute_id", flat=True).first()
    )
    if dispute_id is None:
        raise NotFound("No such inspection.", code="inspection_not_found")
    dispute = _lock(dispute_id)
    inspection = Inspection.objects.select_for_update(no_key=True).get(pk=inspection.pk)
    if not (
        actor.is_authenticated
        and actor.is_inspector
        and actor.organisation_id == inspection.organisation_id
    ):
        raise NotFound("No such inspection.", code="inspection_not_found")
    if inspection.state != Inspection.State.ASSIGNED:
        raise InvalidTransition(
            f"This inspection cannot take a report now ({inspection.get_state_display().lower()}).",
            code="invalid_transition",
        )
    row = _check(dispute, "inspection_reported", P.INSPECTOR)
    errors: dict[str, list[str]] = {}
    if verdict not in Inspection.Verdict.values:
        errors["verdict"] = ["Choose whether the goods conform to the contract."]
    if not (findings or "").strip():
        errors["findings"] = ["Write the findings."]
    if not [file for file in files if file is not None]:
        errors["files"] = ["Attach the report (PDF or images)."]
    if errors:
        raise ValidationFailed("The report is not complete.", fields=errors)
    stored = _store_files(files)
    now = clock.now()
    Inspection.objects.filter(pk=inspection.pk).update(
        state=Inspection.State.REPORTED,
        verdict=verdict,
        findings=findings.strip(),
        reported_by=actor,
        reported_at=now,
    )
    inspection.refresh_from_db()
    _evidence_create(
        dispute=dispute,
        party=P.INSPECTOR,
        actor=actor,
        stored=stored,
        description=f"Inspection report ({inspection.get_verdict_display()})",
        inspection=inspection,
    )
    _move(
        dispute,
        row,
        party=P.INSPECTOR,
        actor=actor,
        note=findings.strip()[:1000],
        data={"inspection": inspection.pk, "verdict": verdict},
    )
    text = f"inspection report: {inspection.get_verdict_display().lower()}"
    _tell_mediators(dispute, f"{text} — decide", findings[:500])
    for users in (_buyers(dispute), _suppliers(dispute)):
        _tell(dispute, users, text, findings[:500])
    return inspection


def _cancel_inspections(dispute: Dispute, *, settle_fault: bool | None) -> list[int]:
    """On close: settle any paid fee (when the fault is known) and cancel open inspections."""
    from payments.services import inspection_fee_settle

    settled = []
    for inspection in (
        Inspection.objects.select_for_update(no_key=True).filter(dispute=dispute).order_by("pk")
    ):
        if inspection.fee_paid_at and not inspection.fee_settled:
            at_fault = settle_fault
            if inspection.verdict:
                at_fault = inspection.verdict == Inspection.Verdict.DOES_NOT_CONFORM
            if at_fault is None:
                at_fault = False
            inspection_fee_settle(
                escrow_reference=dispute.order.escrow_reference,
                supplier_at_fault=at_fault,
                idempotency_key=f"dispute:{dispute.pk}:inspection:{inspection.pk}:fee-settle",
            )
            inspection.fee_settled = True
            settled.append(inspection.pk)
        if inspection.state in (Inspection.State.AWAITING_FEE, Inspection.State.ASSIGNED):
            inspection.state = Inspection.State.CANCELLED
            inspection.fee_due_at = None
        inspection.save()
    return settled


# ---------------------------------------------------------------------------------------------
# Deciding, and executing an outcome (the ONE place).
# ---------------------------------------------------------------------------------------------


@transaction.atomic
def dispute_decide(
    *,
    dispute: Dispute,
    actor: User,
    terms: OutcomeTerms,
    reason: str,
    supplier_at_fault: bool | None = None,
) -> Dispute:
    """The assigned mediator decides with a reason: full/partial refund, no refund or a new
    agreement. `supplier_at_fault` defaults to True for every remedy but no_refund."""
    dispute = _lock(dispute)
    party = _require_mediator(dispute, actor)
    _check(dispute, "decide", party)
    if not (reason or "").strip():
        raise ValidationFailed(
            "Give the reason for the decision (both parties read it).",
            fields={"reason": ["Give the reason for the decision."]},
        )
    return dispute_outcome_execute(
        dispute=dispute,
        actor=actor,
        terms=terms,
        via="decision",
        reason=reason.strip(),
        action="decide",
        supplier_at_fault=supplier_at_fault,
    )


@transaction.atomic
def dispute_outcome_execute(
    *,
    dispute: Dispute,
    actor: User,
    terms: OutcomeTerms,
    via: str,
    reason: str,
    action: str,
    supplier_at_fault: bool | None = None,
) -> Dispute:
    """Carry out a settlement ("agreement") or a decision, all or nothing.

    Locks the dispute, then the escrow and the order (escrow first, like every orders service
    and the payments capture hook), so racing calls serialise on the dispute row. Then: the
    contract amendment (new agreement), `order_dispute_resolved` (unfreeze, refund and/or
    release, order status), inspection fees settled, the dispute resolved with its event, the
    parties told, supplier metrics recomputed. Called again on a resolved dispute it raises
    InvalidTransition and moves nothing (and every money key is derived from the dispute).
    """
    from orders.services import (
        DisputeOutcome,
        contract_totals,
        order_contract_amend_by_dispute,
        order_dispute_resolved,
    )
    from suppliers.services import supplier_metrics_recompute

    dispute = _lock(dispute)
    party = party_of(dispute=dispute, user=actor)
    row = _check(dispute, action, party)
    if row.target != S.RESOLVED:
        raise InvalidTransition(
            "This action does not resolve a dispute.", code="invalid_transition"
        )
    _lock_order_and_escrow(dispute.order_id)
    terms = outcome_terms_check(dispute=dispute, terms=terms, allow_no_refund=via == "decision")
    if supplier_at_fault is None:
        supplier_at_fault = terms.remedy != Remedy.NO_REFUND
    order = dispute.order
    reference = dispute.reference
    note = f"Dispute {reference} ({via}): {describe_terms(terms, order.currency)}. {reason}"
    refund = Decimal(0)
    version_number = None
    if terms.remedy == Remedy.FULL_REFUND:
        outcome = DisputeOutcome.FULL_REFUND
        refund = _held(order)
    elif terms.remedy == Remedy.PARTIAL_REFUND:
        outcome = DisputeOutcome.PARTIAL_REFUND
        refund = terms.refund_amount
    elif terms.remedy == Remedy.NO_REFUND:
        outcome = DisputeOutcome.RELEASE if _goods_shipped(dispute) else DisputeOutcome.RESUME
    else:
        # A replacement sends the order back to ready to ship with the money still held.
        outcome = DisputeOutcome.REPLACEMENT if terms.replacement else DisputeOutcome.NEW_AGREEMENT
        new_terms = _reduced_contract_terms(order, terms)
        if terms.price_reduction:
            new_total = contract_totals(terms=new_terms).total
            initial = min(new_terms.initial_payment_amount, new_total)
            new_terms = dataclasses.replace(new_terms, initial_payment_amount=initial)
            refund = max(Decimal(0), _held(order) - new_total)
        version = order_contract_amend_by_dispute(
            order=order,
            actor=actor,
            terms=new_terms,
            dispute_reference=reference,
            note=note,
        )
        version_number = version.number
    order_dispute_resolved(
        order=order,
        actor=actor,
        outcome=outcome,
        dispute_reference=reference,
        refund_amount=refund if outcome != DisputeOutcome.FULL_REFUND else Decimal(0),
        supplier_at_fault=bool(supplier_at_fault) and via == "decision",
        note=note,
    )
    settled = _cancel_inspections(dispute, settle_fault=bool(supplier_at_fault))
    _end_open_items(dispute)
    dispute.outcome = terms.remedy
    dispute.outcome_refund = refund
    dispute.outcome_reason = reason
    dispute.resolved_via = via
    dispute.supplier_at_fault = bool(supplier_at_fault)
    dispute.flagged_for_decision = False
    dispute.closed_at = clock.now()
    dispute.closed_by = actor
    _clear_timers(dispute)
    _move(
        dispute,
        row,
        party=party,
        actor=actor,
        note=reason,
        data={
            "outcome": terms.remedy,
            "order_outcome": outcome,
            "terms": describe_terms(terms, order.currency),
            "refund": str(refund),
            "contract_version": version_number,
            "supplier_at_fault": bool(supplier_at_fault),
            "inspection_fees_settled": settled,
            "via": via,
        },
    )
    supplier_metrics_recompute(supplier=order.supplier)
    title = f"resolved — {describe_terms(terms, order.currency)}"
    for users in (_buyers(dispute), _suppliers(dispute)):
        _tell(dispute, users, title, reason)
    if dispute.mediator_id and party != P.MEDIATOR:
        _tell_mediators(dispute, "settled by the parties", reason)
    return dispute
