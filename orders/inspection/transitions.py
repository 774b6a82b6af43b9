"""The pre-shipment inspection's lifecycle as ONE explicit map (the kernel engine, like orders and
disputes): action x source status → target, and who may take it. Each move writes one
`PreshipmentInspectionEvent` in the service's transaction."""

from orders.inspection.models import (
    InspectionParty,
    InspectionStatus,
    PreshipmentInspection,
    PreshipmentInspectionEvent,
)
from tradeassure.core.transitions import Lifecycle, Transition, rows

S = InspectionStatus
BUYER, SUPPLIER, INSPECTOR = (
    InspectionParty.BUYER,
    InspectionParty.SUPPLIER,
    InspectionParty.INSPECTOR,
)
SYSTEM, MEDIATOR = InspectionParty.SYSTEM, InspectionParty.MEDIATOR

TRANSITIONS: list[Transition] = [
    *rows("book", "", S.AWAITING_FEE, {BUYER}, "Book a pre-shipment inspection"),
    # The payments capture hook acts as the system.
    *rows("fee_paid", S.AWAITING_FEE, S.SCHEDULED, {SYSTEM}, "Inspection fee paid"),
    *rows("cancel", S.AWAITING_FEE, S.CANCELLED, {BUYER}, "Cancel the booking"),
    *rows("fee_expired", S.AWAITING_FEE, S.CANCELLED, {SYSTEM}, "Inspection fee not paid in time"),
    # The order shipped, or ended, before the inspection took place: a paid fee goes back to
    # the buyer (nobody is charged, the inspection company is not paid).
    *rows(
        "withdraw",
        (S.AWAITING_FEE, S.SCHEDULED),
        S.CANCELLED,
        {SYSTEM},
        "The order moved on before the inspection",
    ),
    *rows(
        "propose_dates",
        (S.AWAITING_FEE, S.SCHEDULED),
        None,
        {SUPPLIER},
        "Propose inspection dates",
    ),
    *rows("report_conforms", S.SCHEDULED, S.CONFORMS, {INSPECTOR}, "Report: conforms"),
    *rows(
        "report_does_not_conform",
        S.SCHEDULED,
        S.DOES_NOT_CONFORM,
        {INSPECTOR},
        "Report: does not conform",
    ),
    # What lifts the shipment block: the buyer agrees to a replacement, or another service
    # records the agreement (a new contract version accepted, a cancellation with a refund, a
    # dispute's decision).
    *rows(
        "agree_replacement",
        S.DOES_NOT_CONFORM,
        S.RESOLVED,
        {BUYER},
        "Agree to a replacement of the goods",
    ),
    *rows(
        "resolve",
        S.DOES_NOT_CONFORM,
        S.RESOLVED,
        {BUYER, SUPPLIER, MEDIATOR, SYSTEM},
        "Agreed what next",
    ),
]

LIFECYCLE = Lifecycle[PreshipmentInspection](
    noun="inspection",
    transitions=TRANSITIONS,
    statuses=InspectionStatus,
    event_model=PreshipmentInspectionEvent,
    subject_field="inspection",
)

# Actions people take from the pages (the rest are the payments hook's and other services').
BUYER_ACTIONS = ("cancel", "agree_replacement")
