"""The order lifecycle (DESIGN.md §3) as ONE explicit map: action x source status → target, actors.

Every service that changes an order checks its move here (`LIFECYCLE.check`, the kernel engine
in `tradeassure.core.transitions`), so what the services allow, what the order page offers
(`available_actions`) and what the README documents are the same thing. A guard is a rule on
the order's facts (not on who acts) that must hold too; its `refusal` is the message a person
sees when it does not.
"""

from collections.abc import Callable

from orders.models import Coverage, Order, OrderEvent, OrderStatus, Party
from tradeassure.core.transitions import Lifecycle, Transition, rows

S = OrderStatus
BUYER, SUPPLIER, SYSTEM, MEDIATOR = Party.BUYER, Party.SUPPLIER, Party.SYSTEM, Party.MEDIATOR

# Statuses where the initial payment is held but the goods have not shipped.
PAID_NOT_SHIPPED = (S.IN_PRODUCTION, S.AWAITING_BALANCE, S.READY_TO_SHIP)
# While the supplier waits for the buyer's balance it cannot ship: the shipment deadline does not
# flag it late then, and moves by the wait when the balance arrives.
SHIPMENT_CLOCK_RUNS = (S.IN_PRODUCTION, S.READY_TO_SHIP)
# Statuses where the contract may still change by agreement (money terms only before payment).
AMENDABLE = (S.AWAITING_PAYMENT, *PAID_NOT_SHIPPED)
# Statuses a dispute may be opened from (the disputes app decides which claim types fit).
DISPUTABLE = (*PAID_NOT_SHIPPED, S.SHIPPED, S.DELIVERED)
# The status to return to after a dispute is not known statically: it is the one remembered.
BACK_TO_PRIOR = "<status before the dispute>"
FINAL = (S.COMPLETED, S.CANCELLED, S.REFUNDED)


def _has_balance(order: Order) -> bool:
    return order.balance_amount > 0


def _no_balance(order: Order) -> bool:
    return order.balance_amount == 0


def _post_delivery(order: Order) -> bool:
    return order.coverage == Coverage.POST_DELIVERY


def _pre_shipment(order: Order) -> bool:
    return order.coverage == Coverage.PRE_SHIPMENT


def _late(order: Order) -> bool:
    return order.is_late


def _not_blocked_by_inspection(order: Order) -> bool:
    return not order.shipment_blocked_by_inspection


def _blocked_by_inspection(order: Order) -> bool:
    return order.shipment_blocked_by_inspection


SHIPMENT_BLOCKED = (
    "Shipment is blocked: the pre-shipment inspection found that the goods do not conform to the "
    "contract. Agree with the buyer first: a new contract version, a replacement of the goods, or "
    "a cancellation with a full refund."
)


def _replacement_possible(order: Order) -> bool:
    """Only money still held can wait for a replacement: post-delivery coverage, disputed after
    shipment. (Pre-shipment coverage released everything at shipment, so it has none.)"""
    return order.coverage == Coverage.POST_DELIVERY and order.status_before_dispute in (
        S.SHIPPED,
        S.DELIVERED,
    )


TRANSITIONS: list[Transition] = [
    # Placing the order (no source status: the order did not exist).
    *rows("place", "", S.PENDING_CONFIRMATION, {BUYER}, "Place order"),
    # Confirmation, and changes proposed by the supplier instead of a plain confirmation.
    *rows("confirm", S.PENDING_CONFIRMATION, S.AWAITING_PAYMENT, {SUPPLIER}, "Confirm order"),
    *rows("propose_changes", S.PENDING_CONFIRMATION, None, {SUPPLIER}, "Propose changes"),
    *rows("propose_changes", AMENDABLE, None, {BUYER, SUPPLIER}, "Propose a contract change"),
    # Accepting the supplier's changes before confirmation confirms the order on the new terms.
    *rows("accept_changes", S.PENDING_CONFIRMATION, S.AWAITING_PAYMENT, {BUYER}, "Accept changes"),
    *rows("accept_changes", AMENDABLE, None, {BUYER, SUPPLIER}, "Accept the proposed change"),
    *rows("decline_changes", S.PENDING_CONFIRMATION, None, {BUYER}, "Decline changes"),
    *rows("decline_changes", AMENDABLE, None, {BUYER, SUPPLIER}, "Decline the proposed change"),
    *rows(
        "withdraw_changes",
        (S.PENDING_CONFIRMATION, *AMENDABLE),
        None,
        {BUYER, SUPPLIER},
        "Withdraw your proposal",
    ),
    # Cancelling before any money is held; the timers cancel too.
    *rows(
        "cancel",
        (S.PENDING_CONFIRMATION, S.AWAITING_PAYMENT),
        S.CANCELLED,
        {BUYER, SUPPLIER},
        "Cancel order",
    ),
    *rows(
        "expire_confirmation", S.PENDING_CONFIRMATION, S.CANCELLED, {SYSTEM}, "Confirmation timeout"
    ),
    *rows("expire_payment", S.AWAITING_PAYMENT, S.CANCELLED, {SYSTEM}, "Payment timeout"),
    # Payments (the payments app's capture hook acts as the system).
    *rows(
        "initial_payment_captured", S.AWAITING_PAYMENT, S.IN_PRODUCTION, {SYSTEM}, "Initial payment"
    ),
    *rows(
        "request_balance",
        S.IN_PRODUCTION,
        S.AWAITING_BALANCE,
        {SUPPLIER},
        "Request balance payment",
        _has_balance,
        "This order has no balance to pay.",
    ),
    *rows(
        "mark_ready",
        S.IN_PRODUCTION,
        S.READY_TO_SHIP,
        {SUPPLIER},
        "Mark ready to ship",
        _no_balance,
        "The balance must be paid before the goods are ready to ship: request it.",
    ),
    *rows(
        "balance_payment_captured", S.AWAITING_BALANCE, S.READY_TO_SHIP, {SYSTEM}, "Balance paid"
    ),
    # Shipment and the shipment deadline.
    *rows(
        "ship",
        S.READY_TO_SHIP,
        S.SHIPPED,
        {SUPPLIER},
        "Record shipment",
        _not_blocked_by_inspection,
        SHIPMENT_BLOCKED,
    ),
    # A pre-shipment inspection found the goods not conforming (orders.inspection): the buyer
    # may cancel and get every held amount back, without the supplier's consent.
    *rows(
        "cancel_after_failed_inspection",
        PAID_NOT_SHIPPED,
        S.REFUNDED,
        {BUYER},
        "Cancel with a full refund (inspection failed)",
        _blocked_by_inspection,
        "Only after a pre-shipment inspection found that the goods do not conform.",
    ),
    *rows("flag_late", PAID_NOT_SHIPPED, None, {SYSTEM}, "Shipment deadline passed"),
    *rows(
        "cancel_late_with_refund",
        PAID_NOT_SHIPPED,
        S.REFUNDED,
        {BUYER},
        "Cancel with a full refund",
        _late,
        "The shipment deadline has not passed yet.",
    ),
    *rows(
        "extend_shipment_deadline",
        PAID_NOT_SHIPPED,
        None,
        {BUYER},
        "Extend the shipment deadline",
    ),
    # Receipt, acceptance and the post-delivery window.
    *rows(
        "confirm_receipt",
        S.SHIPPED,
        S.DELIVERED,
        {BUYER},
        "Confirm receipt",
        _post_delivery,
        "Post-delivery orders only.",
    ),
    *rows(
        "confirm_receipt",
        S.SHIPPED,
        S.COMPLETED,
        {BUYER},
        "Confirm receipt",
        _pre_shipment,
        "Pre-shipment orders only.",
    ),
    *rows(
        "auto_confirm_receipt",
        S.SHIPPED,
        S.DELIVERED,
        {SYSTEM},
        "Receipt window ended",
        _post_delivery,
        "Post-delivery orders only.",
    ),
    *rows(
        "auto_confirm_receipt",
        S.SHIPPED,
        S.COMPLETED,
        {SYSTEM},
        "Receipt window ended",
        _pre_shipment,
        "Pre-shipment orders only.",
    ),
    *rows(
        "extend_receipt_window",
        S.SHIPPED,
        None,
        {BUYER, SUPPLIER},
        "Extend receipt window by 15 days",
    ),
    *rows(
        "accept_goods", S.DELIVERED, S.COMPLETED, {BUYER}, "Accept the goods and release payment"
    ),
    *rows("complete_after_window", S.DELIVERED, S.COMPLETED, {SYSTEM}, "Claim window ended"),
    *rows("rate", S.COMPLETED, None, {BUYER}, "Rate this order"),
    # Disputes (called by the disputes app).
    *rows("dispute_opened", DISPUTABLE, S.DISPUTED, {BUYER, MEDIATOR, SYSTEM}, "Dispute opened"),
    *rows(
        "dispute_resolved_resume",
        S.DISPUTED,
        BACK_TO_PRIOR,
        {BUYER, SUPPLIER, MEDIATOR, SYSTEM},
        "Dispute closed, order continues",
    ),
    *rows(
        "dispute_resolved_refund",
        S.DISPUTED,
        S.REFUNDED,
        {BUYER, SUPPLIER, MEDIATOR, SYSTEM},
        "Dispute decided: full refund",
    ),
    *rows(
        "dispute_resolved_complete",
        S.DISPUTED,
        S.COMPLETED,
        {BUYER, SUPPLIER, MEDIATOR, SYSTEM},
        "Dispute decided: order completed",
    ),
    # A new agreement with replacement goods: the money stays held and the supplier ships again
    # (receipt and post-delivery windows restart with the replacement shipment).
    *rows(
        "dispute_resolved_replacement",
        S.DISPUTED,
        S.READY_TO_SHIP,
        {BUYER, SUPPLIER, MEDIATOR, SYSTEM},
        "Dispute settled: replacement to ship",
        _replacement_possible,
        "A replacement is possible only for a post-delivery order disputed after shipment: "
        "pre-shipment coverage released the payment at shipment, so nothing is held for it.",
    ),
    *rows(
        "contract_amended_by_dispute",
        S.DISPUTED,
        None,
        {BUYER, SUPPLIER, MEDIATOR, SYSTEM},
        "New agreement",
    ),
]


# Rules that depend on WHO acts as well as on the order (the map's actors say which party may
# act at all; these say when that party may not, and why). Each returns a refusal or None.
def _proposal_open_for_answer(order: Order, party: str) -> str | None:
    if not order.proposal_pending_from:
        return "There is no proposed change to answer."
    if order.proposal_pending_from == party:
        return "You proposed this change; the other party must answer it."
    return None


def _own_proposal_open(order: Order, party: str) -> str | None:
    if order.proposal_pending_from != party:
        return "You have no proposed change waiting for an answer."
    return None


def _no_proposal_open(order: Order, party: str) -> str | None:
    if order.proposal_pending_from:
        return "A proposed change is waiting for an answer; answer or withdraw it first."
    return None


def _receipt_extension_left(order: Order, party: str) -> str | None:
    used = order.receipt_extended_by_buyer if party == BUYER else order.receipt_extended_by_supplier
    if used:
        return "You have already extended the receipt window once."
    return None


def _not_rated(order: Order, party: str) -> str | None:
    if order.rating_score is not None:
        return "This order has already been rated."
    return None


PARTY_RULES: dict[str, Callable[[Order, str], str | None]] = {
    "confirm": _no_proposal_open,
    "propose_changes": _no_proposal_open,
    "accept_changes": _proposal_open_for_answer,
    "decline_changes": _proposal_open_for_answer,
    "withdraw_changes": _own_proposal_open,
    "extend_receipt_window": _receipt_extension_left,
    "rate": _not_rated,
}

# Actions people take from the order page (the rest are the timers', the payments app's and
# the disputes app's).
PAGE_ACTIONS = (
    "confirm",
    "propose_changes",
    "accept_changes",
    "decline_changes",
    "withdraw_changes",
    "request_balance",
    "mark_ready",
    "ship",
    "extend_shipment_deadline",
    "cancel_late_with_refund",
    "cancel_after_failed_inspection",
    "confirm_receipt",
    "extend_receipt_window",
    "accept_goods",
    "rate",
    "cancel",
)


def _resolve_target(order: Order, target: str) -> str:
    """BACK_TO_PRIOR is the status the order had when the dispute opened."""
    return order.status_before_dispute if target == BACK_TO_PRIOR else target


# `Lifecycle[Order](...)`, not an annotation: mypy checks an annotation's type argument against
# the `Subject` bound before the django-stubs plugin has typed the model fields (`status` is still
# a CharField then: django-stubs #651), a type application once they are `str`.
LIFECYCLE = Lifecycle[Order](
    noun="order",
    transitions=TRANSITIONS,
    statuses=OrderStatus,
    event_model=OrderEvent,
    subject_field="order",
    party_rules=PARTY_RULES,
    resolve_target=_resolve_target,
)

ACTIONS = LIFECYCLE.actions


# Thin delegations to the lifecycle, for the callers (selectors, pages, tests) that use them.
def transitions_from(action: str, source: str) -> list[Transition]:
    return LIFECYCLE.rows_from(action, source)


def transition_for(order: Order, action: str) -> Transition | None:
    """The row that applies to this order now (first whose guard holds), or None."""
    return LIFECYCLE.first_allowed(order, action)


def label_for(action: str) -> str:
    return LIFECYCLE.label_for(action)


def target_for(order: Order, row: Transition) -> str:
    """The status a row moves this order to (BACK_TO_PRIOR resolved)."""
    return LIFECYCLE.target_for(order, row)


def party_refusal(order: Order, action: str, party: str) -> str | None:
    return LIFECYCLE.party_refusal(order, action, party)


def available_actions(order: Order, party: str | None) -> list[Transition]:
    """What this party may do to this order now: the map, its guards and the party rules."""
    return LIFECYCLE.available(order, party, PAGE_ACTIONS)
