"""Writes to the pre-shipment inspection: book, pay the fee (and its capture hook), cancel an
unpaid booking, propose dates, report, agree to a replacement.

Every service is one transaction that takes the locks in the product's one order (the order's
escrow when money may move, then the order, then the inspection), checks the move on the
inspection's map (`orders.inspection.transitions`), writes one timeline row, publishes its domain
event and tells the people concerned. The fee follows the disputes' rule (`tradeassure.core.
inspections`): settled when the report comes in — refunded to the buyer and charged to the
supplier when the goods do not conform, paid to the inspection company when they conform.
"""

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any, cast

from django.conf import settings
from django.core.files import File
from django.db import IntegrityError, transaction

from accounts.error_codes import AccountErrorCode
from accounts.models import Organisation, User
from accounts.selectors import organisation_members
from accounts.team import REFUSALS, Capability, RoleNotAllowed, team_allows, team_require
from orders.error_codes import OrderErrorCode
from orders.inspection.holds import inspection_hold_lift
from orders.inspection.models import (
    ACTIVE_STATUSES,
    InspectionParty,
    InspectionResolution,
    InspectionStatus,
    PreshipmentInspection,
    PreshipmentInspectionFile,
)
from orders.inspection.transitions import LIFECYCLE
from orders.models import ContractVersion, Order, Party
from orders.parties import order_buyers, order_supplier_staff, party_of
from orders.transitions import PAID_NOT_SHIPPED
from payments.models import Payment
from payments.references import EscrowReference
from payments.services import (
    escrow_lock_for_order,
    inspection_fee_return,
    inspection_fee_settle,
    payment_start,
)
from tradeassure.core import clock
from tradeassure.core.error_codes import CommonErrorCode
from tradeassure.core.errors import (
    Conflict,
    InvalidTransition,
    NotAllowed,
    NotFound,
    ValidationFailed,
)
from tradeassure.core.inspections import (
    InspectionVerdict,
    inspection_report_errors,
    supplier_at_fault_by_verdict,
)
from tradeassure.core.moments import moment_token
from tradeassure.core.money import format_money
from tradeassure.core.sweeps import sweep_due
from tradeassure.core.uploads import uploads_removed_on_error, uploads_store_all
from tradeassure.platform.events import event_publish, notify
from tradeassure.platform.models import SystemAlert

S = InspectionStatus
IP = InspectionParty
REPORT_FOLDER = "orders/inspections"
FEE_PURPOSE = Payment.Purpose.PRESHIPMENT_INSPECTION_FEE
NOT_ALLOWED = CommonErrorCode.NOT_ALLOWED


def inspection_fee_for(currency: str) -> Decimal:
    """The pre-shipment inspection fee in this currency (the dispute inspections' table)."""
    return settings.PRESHIPMENT_INSPECTION["FEE"].get(currency, Decimal("300.00"))


def inspection_working_days() -> int:
    """Working days an inspection must be booked ahead of the shipment deadline (a setting)."""
    return int(settings.PRESHIPMENT_INSPECTION["WORKING_DAYS"])


def inspection_book_refusal(*, order: Order, user: User | None) -> str | None:
    """Why this user cannot book a pre-shipment inspection on this order now (None: they can).
    The pages offer the booking form only when this is None; the service checks it again."""
    return _book_refusal(order, user)[1]


def _book_refusal(order: Order, user: User | None) -> tuple[str, str | None]:
    if party_of(order=order, user=user) != Party.BUYER:
        return NOT_ALLOWED, "Only the buyer books an inspection."
    if not team_allows(user, Capability.DISPUTE):
        return AccountErrorCode.ROLE_NOT_ALLOWED, REFUSALS[Capability.DISPUTE]
    if order.status not in PAID_NOT_SHIPPED:
        if order.initial_paid_at is None:
            return (
                OrderErrorCode.INSPECTION_TOO_EARLY,
                "An inspection can be booked once the initial payment has been made.",
            )
        return (
            CommonErrorCode.INVALID_TRANSITION,
            "An inspection can be booked only while the goods have not shipped.",
        )
    days = inspection_working_days()
    if clock.add_working_days(clock.now(), days) > order.shipment_deadline:
        return (
            OrderErrorCode.INSPECTION_TOO_LATE,
            f"An inspection must be booked at least {days} working days before the shipment "
            "deadline; it is too close now.",
        )
    if (
        order.shipment_blocked_by_inspection
        or PreshipmentInspection.objects.filter(order=order, status__in=ACTIVE_STATUSES).exists()
    ):
        return (
            OrderErrorCode.INSPECTION_ALREADY_ACTIVE,
            "This order already has an inspection in progress.",
        )
    return "", None


def _audience(order: Order, inspection: PreshipmentInspection | None = None) -> list[int]:
    audience = [order.buyer_organisation_id, order.supplier.organisation_id]
    if inspection is not None:
        audience.append(inspection.organisation_id)
    return audience


def _publish(order: Order, inspection: PreshipmentInspection, topic: str, **payload: Any) -> None:
    event_publish(
        topic=topic,
        subject_type="order",
        subject_id=order.pk,
        audience=_audience(order, inspection),
        payload={
            "order": order.reference,
            "inspection": inspection.pk,
            "status": inspection.status,
            **payload,
        },
    )


def _tell(
    users: Any, inspection: PreshipmentInspection, order: Order, title: str, body: str = ""
) -> None:
    notify(
        users=users,
        title=f"{order.reference}: {title}",
        body=body,
        url=inspection.get_absolute_url(),
    )


def _tell_inspectors(
    inspection: PreshipmentInspection, order: Order, title: str, body: str = ""
) -> None:
    notify(
        users=organisation_members(
            organisation_id=inspection.organisation_id, role=User.Role.INSPECTOR
        ),
        title=f"{order.reference}: {title}",
        body=body,
        url=inspection.get_inspector_url(),
    )


def _order_lock(order_id: int, *, escrow_first: bool = False) -> Order:
    if escrow_first:
        escrow_lock_for_order(order_id=order_id)
    return (
        Order.objects.select_for_update(of=("self",))
        .select_related("supplier__organisation", "buyer_organisation", "current_version")
        .get(pk=order_id)
    )


def _inspection_lock(pk: int) -> PreshipmentInspection:
    return PreshipmentInspection.objects.select_for_update(of=("self",), no_key=True).get(pk=pk)


@transaction.atomic
def preshipment_inspection_book(
    *, order: Order, actor: User, organisation: Organisation | None, instructions: str = ""
) -> PreshipmentInspection:
    """The buyer books an inspection of the goods before shipment, from an approved inspection
    company, after the initial payment and at least `WORKING_DAYS` working days before the
    shipment deadline. The supplier is told; the buyer then pays the fee."""
    order = _order_lock(order.pk)
    code, refusal = _book_refusal(order, actor)
    if refusal:
        if code == NOT_ALLOWED:
            raise NotAllowed(refusal, code=NOT_ALLOWED)
        if code == AccountErrorCode.ROLE_NOT_ALLOWED:
            raise RoleNotAllowed(refusal)
        raise InvalidTransition(refusal, code=code)
    if organisation is None or not (
        organisation.kind == Organisation.Kind.INSPECTION and organisation.inspection_approved
    ):
        message = "Choose one of the approved inspection companies."
        raise ValidationFailed(
            message,
            code=OrderErrorCode.INSPECTION_COMPANY_NOT_APPROVED,
            fields={"organisation": [message]},
        )
    if len(instructions or "") > 5000:
        message = "Write at most 5,000 characters."
        raise ValidationFailed(message, fields={"instructions": [message]})
    row = LIFECYCLE.check(PreshipmentInspection(status=""), "book", IP.BUYER)
    now = clock.now()
    try:
        with transaction.atomic():
            inspection = PreshipmentInspection.objects.create(
                order=order,
                contract_version=cast(ContractVersion, order.current_version),
                organisation=organisation,
                status=row.target,
                instructions=(instructions or "").strip(),
                fee_amount=inspection_fee_for(order.currency),
                currency=order.currency,
                booked_by=actor,
                booked_at=now,
                fee_due_at=now + settings.PRESHIPMENT_INSPECTION["FEE_PAYMENT_WINDOW"],
            )
    except IntegrityError as error:  # a booking made at the same moment won
        raise Conflict(
            "This order already has an inspection in progress.",
            code=OrderErrorCode.INSPECTION_ALREADY_ACTIVE,
        ) from error
    LIFECYCLE.record(
        inspection,
        action="book",
        party=IP.BUYER,
        actor=actor,
        note=inspection.instructions[:1000],
        data={"organisation": organisation.name, "fee": str(inspection.fee_amount)},
        from_status="",
    )
    _publish(
        order,
        inspection,
        "order.inspection_booked",
        organisation=organisation.name,
        fee=str(inspection.fee_amount),
        currency=inspection.currency,
    )
    _tell(
        order_supplier_staff(order),
        inspection,
        order,
        f"the buyer booked a pre-shipment inspection by {organisation.name}",
        "Propose the dates the goods can be inspected. A report that the goods do not conform "
        "blocks shipment until you and the buyer agree what next.",
    )
    _tell(
        order_buyers(order),
        inspection,
        order,
        f"pay the inspection fee ({format_money(inspection.fee_amount, inspection.currency)}) "
        f"by {moment_token(inspection.fee_due_at)}",
        "The inspection company is told once the fee is paid. The fee is refunded to you (and "
        "charged to the supplier) if the goods do not conform. Unpaid, the booking lapses.",
    )
    return inspection


def preshipment_inspection_fee_pay(
    *, inspection: PreshipmentInspection, actor: User, method: str
) -> Payment:
    """Start (or reopen) the buyer's payment of the fee through the payments provider; returns the
    Payment to complete. Idempotent: the same inspection and method give the same payment."""
    with transaction.atomic():
        order = _order_lock(inspection.order_id, escrow_first=True)
        inspection = _inspection_lock(inspection.pk)
        if party_of(order=order, user=actor) != Party.BUYER:
            raise NotAllowed("Only the buyer pays the inspection fee.", code=NOT_ALLOWED)
        team_require(actor, Capability.PAY)
        if inspection.status != S.AWAITING_FEE:
            raise InvalidTransition(
                "This inspection fee is not waiting for payment.",
                code=OrderErrorCode.INSPECTION_FEE_NOT_DUE,
            )
        payment = payment_start(
            escrow_reference=order.escrow_reference,
            purpose=FEE_PURPOSE,
            amount=inspection.fee_amount,
            currency=inspection.currency,
            method=method,
            payer_organisation=order.buyer_organisation,
            idempotency_key=f"order:{order.pk}:preshipment-inspection:{inspection.pk}:fee:{method}",
            return_url=inspection.get_absolute_url(),
        )
        PreshipmentInspection.objects.filter(pk=inspection.pk).update(fee_payment=payment)
        return payment


def preshipment_inspection_fee_captured(*, payment: Any) -> None:
    """PAYMENT_CAPTURED_HOOKS entry: the buyer's pre-shipment inspection fee arrived.

    Runs in the capture's transaction (the escrow is locked), locks only the inspection, and never
    raises for money that has arrived: a fee no booking waits for (it lapsed, was cancelled, or
    another payment of it came first) goes back to the buyer. Called twice for one payment: no
    effect."""
    if getattr(payment, "purpose", "") != FEE_PURPOSE:
        return
    queryset = PreshipmentInspection.objects.select_for_update(of=("self",), no_key=True)
    inspection = queryset.filter(fee_payment_id=payment.pk).first()
    if inspection is None:
        order_id = EscrowReference.parse(payment.escrow.reference).order_id
        if order_id is not None:
            inspection = queryset.filter(
                order_id=order_id, status=S.AWAITING_FEE, fee_amount=payment.amount
            ).first()
    if inspection is None or inspection.status != S.AWAITING_FEE:
        if (
            inspection is not None
            and inspection.fee_payment_id == payment.pk
            and inspection.fee_paid_at
        ):
            return  # the same capture seen twice
        # No booking waits for this money (it lapsed or was cancelled, or another payment of
        # the fee arrived first): give it back to the buyer, once (keyed by the payment).
        inspection_fee_return(
            escrow_reference=payment.escrow.reference,
            amount=payment.amount,
            idempotency_key=f"payment:{payment.pk}:preshipment-inspection-fee-return",
            reason="No inspection booking was waiting for this fee.",
        )
        return
    order = Order.objects.select_related("supplier__organisation").get(pk=inspection.order_id)
    row = LIFECYCLE.check(inspection, "fee_paid", IP.SYSTEM)
    inspection.fee_payment_id = payment.pk
    inspection.fee_paid_at = clock.now()
    inspection.fee_due_at = None
    LIFECYCLE.move(
        inspection,
        row,
        party=IP.SYSTEM,
        actor=None,
        note=f"Inspection fee {format_money(payment.amount, payment.currency)} paid.",
        data={"payment": payment.pk},
    )
    _publish(order, inspection, "order.inspection_fee_paid", payment=payment.pk)
    _tell_inspectors(
        inspection, order, "new pre-shipment inspection", inspection.instructions[:500]
    )
    _tell(
        order_supplier_staff(order),
        inspection,
        order,
        "the pre-shipment inspection is paid — propose inspection dates",
    )


@transaction.atomic
def preshipment_inspection_cancel(
    *, inspection: PreshipmentInspection, actor: User
) -> PreshipmentInspection:
    """The buyer cancels a booking whose fee it has not paid."""
    order = _order_lock(inspection.order_id)
    inspection = _inspection_lock(inspection.pk)
    if party_of(order=order, user=actor) != Party.BUYER:
        raise NotAllowed("Only the buyer cancels the booking.", code=NOT_ALLOWED)
    team_require(actor, Capability.DISPUTE)
    row = LIFECYCLE.check(inspection, "cancel", IP.BUYER)
    inspection.fee_due_at = None
    LIFECYCLE.move(inspection, row, party=IP.BUYER, actor=actor, note="Cancelled by the buyer.")
    _publish(order, inspection, "order.inspection_cancelled")
    _tell(order_supplier_staff(order), inspection, order, "the buyer cancelled the inspection")
    return inspection


@transaction.atomic
def preshipment_inspection_propose_dates(
    *, inspection: PreshipmentInspection, actor: User, dates: Sequence[date], note: str = ""
) -> PreshipmentInspection:
    """The supplier proposes the dates the goods can be inspected (replacing earlier ones): from
    today to the shipment deadline. The buyer and the inspection company are told."""
    order = _order_lock(inspection.order_id)
    inspection = _inspection_lock(inspection.pk)
    if party_of(order=order, user=actor) != Party.SUPPLIER:
        raise NotAllowed("Only the supplier proposes inspection dates.", code=NOT_ALLOWED)
    team_require(actor, Capability.DISPUTE)
    row = LIFECYCLE.check(inspection, "propose_dates", IP.SUPPLIER)
    today = clock.now().date()
    limit = settings.PRESHIPMENT_INSPECTION["MAX_PROPOSED_DATES"]
    chosen = sorted({day for day in dates if day is not None})
    problem = ""
    if not chosen:
        problem = "Propose at least one date."
    elif len(chosen) > limit:
        problem = f"Propose at most {limit} dates."
    elif chosen[0] < today:
        problem = "The dates cannot be in the past."
    elif chosen[-1] > order.shipment_deadline.date():
        problem = "The dates must be before the shipment deadline."
    if len(note or "") > 500:
        raise ValidationFailed("Write at most 500 characters.", fields={"note": ["Too long."]})
    if problem:
        raise ValidationFailed(problem, fields={"dates": [problem]})
    inspection.proposed_dates = [day.isoformat() for day in chosen]
    inspection.dates_note = (note or "").strip()
    LIFECYCLE.move(
        inspection,
        row,
        party=IP.SUPPLIER,
        actor=actor,
        note=inspection.dates_note,
        data={"dates": inspection.proposed_dates},
    )
    _publish(order, inspection, "order.inspection_dates_proposed", dates=inspection.proposed_dates)
    text = ", ".join(inspection.proposed_dates)
    _tell(order_buyers(order), inspection, order, f"inspection dates proposed: {text}", note)
    _tell_inspectors(inspection, order, f"inspection dates proposed: {text}", note)
    return inspection


@uploads_removed_on_error
@transaction.atomic
def preshipment_inspection_report(
    *,
    inspection: PreshipmentInspection,
    actor: User,
    verdict: str,
    findings: str,
    files: Sequence[File],
) -> PreshipmentInspection:
    """The inspector reports (conforms / does not conform, findings, files); the report is
    attached to the order and the fee is settled by the rule. "Does not conform" blocks shipment
    until the parties agree, and allows a quality claim before shipment."""
    order_id = (
        PreshipmentInspection.objects.filter(pk=inspection.pk)
        .values_list("order_id", flat=True)
        .first()
    )
    if order_id is None:
        raise NotFound("No such inspection.", code=OrderErrorCode.INSPECTION_NOT_FOUND)
    order = _order_lock(order_id, escrow_first=True)
    inspection = _inspection_lock(inspection.pk)
    if not (
        actor.is_authenticated
        and actor.is_active
        and actor.is_inspector
        and actor.organisation_id == inspection.organisation_id
    ):
        raise NotFound("No such inspection.", code=OrderErrorCode.INSPECTION_NOT_FOUND)
    errors = inspection_report_errors(verdict=verdict, findings=findings, files=files)
    if errors:
        raise ValidationFailed("The report is not complete.", fields=errors)
    action = (
        "report_does_not_conform"
        if verdict == InspectionVerdict.DOES_NOT_CONFORM
        else "report_conforms"
    )
    row = LIFECYCLE.check(inspection, action, IP.INSPECTOR)
    stored = uploads_store_all(
        files=files, folder=REPORT_FOLDER, max_files=settings.PRESHIPMENT_INSPECTION["MAX_FILES"]
    )
    now = clock.now()
    PreshipmentInspectionFile.objects.bulk_create(
        PreshipmentInspectionFile(
            inspection=inspection,
            stored_name=item.name,
            original_name=item.original_name,
            content_type=item.content_type,
            size=item.size,
            uploaded_at=now,
        )
        for item in stored
    )
    at_fault = supplier_at_fault_by_verdict(verdict)
    inspection_fee_settle(
        escrow_reference=order.escrow_reference,
        supplier_at_fault=at_fault,
        amount=inspection.fee_amount,
        idempotency_key=f"order:{order.pk}:preshipment-inspection:{inspection.pk}:fee-settle",
    )
    inspection.verdict = verdict
    inspection.findings = findings.strip()
    inspection.reported_by = actor
    inspection.reported_at = now
    inspection.fee_settled_at = now
    inspection.fee_refunded = at_fault
    LIFECYCLE.move(
        inspection,
        row,
        party=IP.INSPECTOR,
        actor=actor,
        note=inspection.findings[:1000],
        data={"verdict": verdict, "files": len(stored), "fee_refunded": at_fault},
    )
    if at_fault:
        order.shipment_blocked_by_inspection = True
        order.save(update_fields=["shipment_blocked_by_inspection", "updated_at"])
    _publish(order, inspection, "order.inspection_reported", verdict=verdict, fee_refunded=at_fault)
    fee = format_money(inspection.fee_amount, inspection.currency)
    if at_fault:
        _tell(
            order_buyers(order),
            inspection,
            order,
            "inspection report: the goods do not conform — shipment is blocked",
            f"Your fee ({fee}) is refunded and charged to the supplier. Agree with the supplier "
            "on a new contract version or a replacement, cancel with a full refund, or file a "
            "quality claim.",
        )
        _tell(
            order_supplier_staff(order),
            inspection,
            order,
            "inspection report: the goods do not conform — shipment is blocked",
            f"The inspection fee ({fee}) is charged to you. Agree with the buyer what next: a "
            "new contract version, a replacement, or a cancellation with a refund.",
        )
    else:
        text = "inspection report: the goods conform to the contract"
        _tell(order_buyers(order), inspection, order, text, findings[:500])
        _tell(order_supplier_staff(order), inspection, order, text, findings[:500])
    return inspection


@transaction.atomic
def preshipment_inspection_agree_replacement(
    *, inspection: PreshipmentInspection, actor: User, note: str = ""
) -> PreshipmentInspection:
    """The buyer agrees that the supplier replaces the non-conforming goods: shipment is no longer
    blocked (the buyer may book another inspection of the replacement)."""
    order = _order_lock(inspection.order_id)
    current = _inspection_lock(inspection.pk)
    if party_of(order=order, user=actor) != Party.BUYER:
        raise NotAllowed("Only the buyer agrees to a replacement.", code=NOT_ALLOWED)
    team_require(actor, Capability.DISPUTE)
    LIFECYCLE.check(current, "agree_replacement", IP.BUYER)
    if len(note or "") > 2000:
        raise ValidationFailed("Write at most 2,000 characters.", fields={"note": ["Too long."]})
    inspection_hold_lift(
        order,
        resolution=InspectionResolution.REPLACEMENT,
        party=IP.BUYER,
        actor=actor,
        note=(note or "").strip() or "The buyer agreed to a replacement of the goods.",
        action="agree_replacement",
    )
    order.save(update_fields=["shipment_blocked_by_inspection", "updated_at"])
    _tell(
        order_supplier_staff(order),
        current,
        order,
        "the buyer agreed to a replacement: you may ship the replacement goods",
        note,
    )
    current.refresh_from_db()
    return current


@transaction.atomic
def preshipment_inspection_fee_expire(*, inspection: PreshipmentInspection | int) -> bool:
    """System: the buyer did not pay the fee in time; the booking lapses (the buyer may book
    again). False when it was not due (paid, cancelled or moved meanwhile)."""
    pk = inspection if isinstance(inspection, int) else inspection.pk
    order_id = (
        PreshipmentInspection.objects.filter(pk=pk).values_list("order_id", flat=True).first()
    )
    if order_id is None:
        return False
    order = _order_lock(order_id)
    inspection = _inspection_lock(pk)
    if (
        inspection.status != S.AWAITING_FEE
        or inspection.fee_due_at is None
        or inspection.fee_due_at > clock.now()
    ):
        return False
    row = LIFECYCLE.check(inspection, "fee_expired", IP.SYSTEM)
    inspection.fee_due_at = None
    LIFECYCLE.move(
        inspection, row, party=IP.SYSTEM, actor=None, note="The fee was not paid in time."
    )
    _publish(order, inspection, "order.inspection_cancelled", reason="fee_not_paid")
    _tell(
        order_buyers(order),
        inspection,
        order,
        "the inspection booking lapsed: its fee was not paid",
        "You may book again while the goods have not shipped.",
    )
    return True


def preshipment_inspections_sweep_fees() -> int:
    """Beat: bookings whose fee was not paid in time lapse (idempotent: a row is handled under
    its lock and only while still due, so two sweeps never lapse one twice)."""

    def alert(pk: int, error: Exception) -> None:
        SystemAlert.objects.create(
            source="orders.sweep_preshipment_inspection_fees",
            message=f"Pre-shipment inspection {pk}: {error!r}"[:2000],
            created_at=clock.now(),
        )

    return sweep_due(
        due=lambda now: PreshipmentInspection.objects.filter(
            status=S.AWAITING_FEE, fee_due_at__lte=now
        ),
        handle=lambda pk: preshipment_inspection_fee_expire(inspection=pk),
        batch_size=settings.TRADE_ASSURANCE["SWEEP_BATCH_SIZE"],
        name="orders.sweep_preshipment_inspection_fees",
        on_failure=alert,
    )
