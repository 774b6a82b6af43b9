"""Inspection: a mediator orders one, the buyer pays its fee (the capture hook), the inspector
reports; the sweep enforces the fee due date; a closing dispute settles the fees.
"""

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.files import File
from django.db import transaction

from accounts.models import Organisation, User
from accounts.selectors import organisation_members
from accounts.team import Capability, team_require
from disputes.error_codes import DisputeErrorCode
from disputes.models import Dispute, DisputeParty, Inspection
from disputes.services._engine import (
    dispute_event_publish,
    dispute_lock,
    dispute_move,
    dispute_tell,
    dispute_tell_mediators,
    dispute_tell_parties,
    disputes_sweep,
    escrow_and_order_lock,
    evidence_create,
    evidence_files_store,
    party_of,
    require_mediator,
    uploads_removed_on_error,
    when,
)
from disputes.transitions import LIFECYCLE
from orders.parties import order_buyers, order_supplier_staff
from payments.references import EscrowReference
from tradeassure.core import clock
from tradeassure.core.errors import InvalidTransition, NotAllowed, NotFound, ValidationFailed
from tradeassure.core.inspections import inspection_report_errors, supplier_at_fault_by_verdict
from tradeassure.core.money import format_money, is_exact
from tradeassure.platform.events import notify
from tradeassure.platform.models import SystemAlert

P = DisputeParty


def inspection_fee_default(currency: str) -> Decimal:
    """The fee a mediator proposes when ordering an inspection in this currency."""
    return settings.DISPUTES["INSPECTION_FEE"].get(currency, Decimal("300.00"))


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
    dispute = dispute_lock(dispute)
    party = require_mediator(dispute, actor)
    row = LIFECYCLE.check(dispute, "order_inspection", party)
    currency = dispute.currency
    errors: dict[str, list[str]] = {}
    if organisation is None or not (
        organisation.kind == Organisation.Kind.INSPECTION and organisation.inspection_approved
    ):
        errors["organisation"] = ["Choose an approved inspection company."]
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
        fee_due_at=now + settings.DISPUTES["INSPECTION_FEE_PAYMENT_WINDOW"],
    )
    dispute_move(
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
    dispute_tell(
        dispute,
        order_buyers(dispute.order),
        f"pay the inspection fee ({format_money(fee_amount, currency)}) by {when(inspection.fee_due_at)}",
        "The mediator ordered a third-party inspection. The fee is refunded to you and charged to "
        "the supplier if the supplier is at fault. Without the fee the mediator decides on the "
        "evidence there is.",
    )
    dispute_tell(
        dispute,
        order_supplier_staff(dispute.order),
        f"the mediator ordered an inspection by {organisation.name}",
    )
    return inspection


def dispute_inspection_fee_pay(*, inspection: Inspection, actor: User, method: str) -> Any:
    """Start (or reopen) the buyer's payment of the inspection fee; returns the Payment."""
    from payments.services import payment_start

    with transaction.atomic():
        dispute = dispute_lock(inspection.dispute_id)
        # escrow → inspection, the order the capture hook uses
        escrow_and_order_lock(dispute.order_id)
        inspection = Inspection.objects.select_for_update(no_key=True).get(pk=inspection.pk)
        if party_of(dispute=dispute, user=actor) != P.BUYER:
            raise NotAllowed("Only the buyer pays the inspection fee.", code="not_allowed")
        team_require(actor, Capability.DISPUTE)
        if inspection.state != Inspection.State.AWAITING_FEE:
            raise InvalidTransition(
                "This inspection fee is not waiting for payment.", code=DisputeErrorCode.FEE_NOT_DUE
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
        # Not linked yet: the one awaiting this fee on the escrow's order (an escrow of no order
        # has none).
        order_id = EscrowReference.parse(payment.escrow.reference).order_id
        if order_id is not None:
            inspection = (
                Inspection.objects.select_for_update(of=("self",), no_key=True)
                .select_related(
                    "dispute__order__supplier__organisation", "dispute__order__buyer_organisation"
                )
                .filter(
                    dispute__order_id=order_id,
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
    # A step on the timeline, not a move: the dispute stays awaiting the inspection.
    LIFECYCLE.record(
        dispute,
        action="inspection_fee_paid",
        party=P.SYSTEM,
        actor=None,
        note=f"Inspection fee {format_money(payment.amount, payment.currency)} paid.",
        data={"inspection": inspection.pk, "payment": payment.pk},
    )
    dispute_event_publish(
        dispute,
        "inspection_fee_paid",
        {"dispute": dispute.reference, "inspection": inspection.pk},
    )
    notify(
        users=organisation_members(
            organisation_id=inspection.organisation_id, role=User.Role.INSPECTOR
        ),
        title=f"New inspection: {dispute.order.reference} ({dispute.get_type_display()})",
        body=inspection.instructions[:500],
        url=inspection.get_absolute_url(),
    )


@transaction.atomic
def inspection_fee_expire(*, inspection: Inspection | int) -> bool:
    """System: the buyer did not pay the fee in time; the mediator decides on what is there."""
    pk = inspection if isinstance(inspection, int) else inspection.pk
    dispute_id = Inspection.objects.filter(pk=pk).values_list("dispute_id", flat=True).first()
    if dispute_id is None:
        return False
    dispute = dispute_lock(dispute_id)
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
    row = LIFECYCLE.check(dispute, "inspection_fee_missed", P.SYSTEM)
    dispute_move(dispute, row, party=P.SYSTEM, actor=None, note=note, data={"inspection": pk})
    dispute_tell_mediators(dispute, "inspection fee not paid — decide", note)
    dispute_tell(
        dispute,
        order_buyers(dispute.order),
        "the inspection was cancelled: its fee was not paid",
        note,
    )
    return True


def disputes_sweep_inspection_fees() -> int:
    """Beat: enforce inspection fee due dates."""
    return disputes_sweep(
        name="sweep_inspection_fees",
        noun="Inspection",
        due=lambda now: Inspection.objects.filter(
            state=Inspection.State.AWAITING_FEE, fee_due_at__lte=now
        ),
        handle=lambda pk: inspection_fee_expire(inspection=pk),
    )


@uploads_removed_on_error
@transaction.atomic
def inspection_report_submit(
    *, inspection: Inspection, actor: User, verdict: str, findings: str, files: Sequence[File]
) -> Inspection:
    """The inspector records the report and the verdict; the mediator reviews and decides."""
    dispute_id = (
        Inspection.objects.filter(pk=inspection.pk).values_list("dispute_id", flat=True).first()
    )
    if dispute_id is None:
        raise NotFound("No such inspection.", code=DisputeErrorCode.INSPECTION_NOT_FOUND)
    dispute = dispute_lock(dispute_id)
    inspection = Inspection.objects.select_for_update(no_key=True).get(pk=inspection.pk)
    if not (
        actor.is_authenticated
        and actor.is_inspector
        and actor.organisation_id == inspection.organisation_id
    ):
        raise NotFound("No such inspection.", code=DisputeErrorCode.INSPECTION_NOT_FOUND)
    if inspection.state != Inspection.State.ASSIGNED:
        raise InvalidTransition(
            f"This inspection cannot take a report now ({inspection.get_state_display().lower()}).",
            code="invalid_transition",
        )
    row = LIFECYCLE.check(dispute, "inspection_reported", P.INSPECTOR)
    errors = inspection_report_errors(verdict=verdict, findings=findings, files=files)
    if errors:
        raise ValidationFailed("The report is not complete.", fields=errors)
    stored = evidence_files_store(files)
    now = clock.now()
    Inspection.objects.filter(pk=inspection.pk).update(
        state=Inspection.State.REPORTED,
        verdict=verdict,
        findings=findings.strip(),
        reported_by=actor,
        reported_at=now,
    )
    inspection.refresh_from_db()
    evidence_create(
        dispute=dispute,
        party=P.INSPECTOR,
        actor=actor,
        stored=stored,
        description=f"Inspection report ({inspection.get_verdict_display()})",
        inspection=inspection,
    )
    dispute_move(
        dispute,
        row,
        party=P.INSPECTOR,
        actor=actor,
        note=findings.strip()[:1000],
        data={"inspection": inspection.pk, "verdict": verdict},
    )
    text = f"inspection report: {inspection.get_verdict_display().lower()}"
    dispute_tell_mediators(dispute, f"{text} — decide", findings[:500])
    dispute_tell_parties(dispute, text, findings[:500])
    return inspection


def inspections_close(dispute: Dispute, *, settle_fault: bool | None) -> list[int]:
    """On close: settle any paid fee (when the fault is known) and cancel open inspections."""
    from payments.services import inspection_fee_settle

    settled = []
    for inspection in (
        Inspection.objects.select_for_update(no_key=True).filter(dispute=dispute).order_by("pk")
    ):
        if inspection.fee_paid_at and not inspection.fee_settled:
            at_fault = settle_fault
            if inspection.verdict:
                at_fault = supplier_at_fault_by_verdict(inspection.verdict)
            if at_fault is None:
                at_fault = False
            inspection_fee_settle(
                escrow_reference=dispute.order.escrow_reference,
                supplier_at_fault=at_fault,
                amount=inspection.fee_amount,
                idempotency_key=f"dispute:{dispute.pk}:inspection:{inspection.pk}:fee-settle",
            )
            inspection.fee_settled = True
            settled.append(inspection.pk)
        if inspection.state in (Inspection.State.AWAITING_FEE, Inspection.State.ASSIGNED):
            inspection.state = Inspection.State.CANCELLED
            inspection.fee_due_at = None
        inspection.save()
    return settled
