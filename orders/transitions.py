"""The order lifecycle (DESIGN.md §3) as ONE explicit map: action x source status → target, actors.

Every service that changes an order looks its move up here (`transition_for`), so what the
services allow, what the order page offers (`available_actions`) and what the README documents
are the same thing. A guard is a rule on the order's facts (not on who acts) that must hold too;
its `refusal` is the message a person sees when it does not.
"""

from collections.abc import Callable
from dataclasses import dataclass

from orders.models import Coverage, Order, OrderStatus, Party

S = OrderStatus
BUYER, SUPPLIER, SYSTEM, MEDIATOR = Party.BUYER, Party.SUPPLIER, Party.SYSTEM, Party.MEDIATOR

# Statuses where the initial payment is held but the goods have not shipped.
PAID_NOT_SHIPPED = (S.IN_PRODUCTION, S.AWAITING_BALANCE, S.READY_TO_SHIP)
# Statuses where the contract may still change by agreement (money terms only before payment).
AMENDABLE = (S.AWAITING_PAYMENT, *PAID_NOT_SHIPPED)
# Statuses a dispute may be opened from (the disputes app decides which claim types fit).
DISPUTABLE = (*PAID_NOT_SHIPPED, S.SHIPPED, S.DELIVERED)
# The status to return to after a dispute is not known statically: it is the one remembered.
BACK_TO_PRIOR = "<status before the dispute>"
FINAL = (S.COMPLETED, S.CANCELLED, S.REFUNDED)


@dataclass(frozen=True)
class Transition:
    action: str
    source: str
    target: str  # a status, or BACK_TO_PRIOR
    actors: frozenset[str]
    label: str
    guard: Callable[[Order], bool] | None = None
    refusal: str = ""

    def allows(self, order: Order) -> bool:
        return self.guard is None or bool(self.guard(order))

    def target_for(self, order: Order) -> str:
        if self.target == BACK_TO_PRIOR:
            return order.status_before_dispute
        return self.target if self.target else order.status


def _t(action, sources, target, actors, label, guard=None, refusal=""):
    """One row per source status; `target=None` keeps the status (an event without a move)."""
    if isinstance(sources, str):
        sources = (sources,)
    return [
        Transition(action, source, target or source, frozenset(actors), label, guard, refusal)
        for source in sources
    ]


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


def _replacement_possible(order: Order) -> bool:
    """Only money still held can wait for a replacement: post-delivery coverage, disputed after
    shipment. (Pre-shipment coverage released everything at shipment, so it has none.)"""
    return order.coverage == Coverage.POST_DELIVERY and order.status_before_dispute in (
        S.SHIPPED,
        S.DELIVERED,
    )


TRANSITIONS: list[Transition] = [
    # Placing the order (no source status: the order did not exist).
    *_t("place", "", S.PENDING_CONFIRMATION, {BUYER}, "Place order"),
    # Confirmation, and changes proposed by the supplier instead of a plain confirmation.
    *_t("confirm", S.PENDING_CONFIRMATION, S.AWAITING_PAYMENT, {SUPPLIER}, "Confirm order"),
    *_t("propose_changes", S.PENDING_CONFIRMATION, None, {SUPPLIER}, "Propose changes"),
    *_t("propose_changes", AMENDABLE, None, {BUYER, SUPPLIER}, "Propose a contract change"),
    # Accepting the supplier's changes before confirmation confirms the order on the new terms.
    *_t("accept_changes", S.PENDING_CONFIRMATION, S.AWAITING_PAYMENT, {BUYER}, "Accept changes"),
    *_t("accept_changes", AMENDABLE, None, {BUYER, SUPPLIER}, "Accept the proposed change"),
    *_t("decline_changes", S.PENDING_CONFIRMATION, None, {BUYER}, "Decline changes"),
    *_t("decline_changes", AMENDABLE, None, {BUYER, SUPPLIER}, "Decline the proposed change"),
    *_t(
        "withdraw_changes",
        (S.PENDING_CONFIRMATION, *AMENDABLE),
        None,
        {BUYER, SUPPLIER},
        "Withdraw your proposal",
    ),
    # Cancelling before any money is held; the timers cancel too.
    *_t(
        "cancel",
        (S.PENDING_CONFIRMATION, S.AWAITING_PAYMENT),
        S.CANCELLED,
        {BUYER, SUPPLIER},
        "Cancel order",
    ),
    *_t(
        "expire_confirmation", S.PENDING_CONFIRMATION, S.CANCELLED, {SYSTEM}, "Confirmation timeout"
    ),
    *_t("expire_payment", S.AWAITING_PAYMENT, S.CANCELLED, {SYSTEM}, "Payment timeout"),
    # Payments (the payments app's capture hook acts as the system).
    *_t(
        "initial_payment_captured", S.AWAITING_PAYMENT, S.IN_PRODUCTION, {SYSTEM}, "Initial payment"
    ),
    *_t(
        "request_balance",
        S.IN_PRODUCTION,
        S.AWAITING_BALANCE,
        {SUPPLIER},
        "Request balance payment",
        _has_balance,
        "This order has no balance to pay.",
    ),
    *_t(
        "mark_ready",
        S.IN_PRODUCTION,
        S.READY_TO_SHIP,
        {SUPPLIER},
        "Mark ready to ship",
        _no_balance,
        "The balance must be paid before the goods are ready to ship: request it.",
    ),
    *_t("balance_payment_captured", S.AWAITING_BALANCE, S.READY_TO_SHIP, {SYSTEM}, "Balance paid"),
    # Shipment and the shipment deadline.
    *_t("ship", S.READY_TO_SHIP, S.SHIPPED, {SUPPLIER}, "Record shipment"),
    *_t("flag_late", PAID_NOT_SHIPPED, None, {SYSTEM}, "Shipment deadline passed"),
    *_t(
        "cancel_late_with_refund",
        PAID_NOT_SHIPPED,
        S.REFUNDED,
        {BUYER},
        "Cancel with a full refund",
        _late,
        "The shipment deadline has not passed yet.",
    ),
    *_t(
        "extend_shipment_deadline",
        PAID_NOT_SHIPPED,
        None,
        {BUYER},
        "Extend the shipment deadline",
    ),
    # Receipt, acceptance and the post-delivery window.
    *_t(
        "confirm_receipt",
        S.SHIPPED,
        S.DELIVERED,
        {BUYER},
        "Confirm receipt",
        _post_delivery,
        "Post-delivery orders only.",
    ),
    *_t(
        "confirm_receipt",
        S.SHIPPED,
        S.COMPLETED,
        {BUYER},
        "Confirm receipt",
        _pre_shipment,
        "Pre-shipment orders only.",
    ),
    *_t(
        "auto_confirm_receipt",
        S.SHIPPED,
        S.DELIVERED,
        {SYSTEM},
        "Receipt window ended",
        _post_delivery,
        "Post-delivery orders only.",
    ),
    *_t(
        "auto_confirm_receipt",
        S.SHIPPED,
        S.COMPLETED,
        {SYSTEM},
        "Receipt window ended",
        _pre_shipment,
        "Pre-shipment orders only.",
    ),
    *_t(
        "extend_receipt_window",
        S.SHIPPED,
        None,
        {BUYER, SUPPLIER},
        "Extend receipt window by 15 days",
    ),
    *_t("accept_goods", S.DELIVERED, S.COMPLETED, {BUYER}, "Accept the goods and release payment"),
    *_t("complete_after_window", S.DELIVERED, S.COMPLETED, {SYSTEM}, "Claim window ended"),
    *_t("rate", S.COMPLETED, None, {BUYER}, "Rate this order"),
    # Disputes (called by the disputes app).
    *_t("dispute_opened", DISPUTABLE, S.DISPUTED, {BUYER, MEDIATOR, SYSTEM}, "Dispute opened"),
    *_t(
        "dispute_resolved_resume",
        S.DISPUTED,
        BACK_TO_PRIOR,
        {BUYER, SUPPLIER, MEDIATOR, SYSTEM},
        "Dispute closed, order continues",
    ),
    *_t(
        "dispute_resolved_refund",
        S.DISPUTED,
        S.REFUNDED,
        {BUYER, SUPPLIER, MEDIATOR, SYSTEM},
        "Dispute decided: full refund",
    ),
    *_t(
        "dispute_resolved_complete",
        S.DISPUTED,
        S.COMPLETED,
        {BUYER, SUPPLIER, MEDIATOR, SYSTEM},
        "Dispute decided: order completed",
    ),
    # A new agreement with replacement goods: the money stays held and the supplier ships again
    # (receipt and post-delivery windows restart with the replacement shipment).
    *_t(
        "dispute_resolved_replacement",
        S.DISPUTED,
        S.READY_TO_SHIP,
        {BUYER, SUPPLIER, MEDIATOR, SYSTEM},
        "Dispute settled: replacement to ship",
        _replacement_possible,
        "A replacement is possible only for a post-delivery order disputed after shipment: "
        "pre-shipment coverage released the payment at shipment, so nothing is held for it.",
    ),
    *_t(
        "contract_amended_by_dispute",
        S.DISPUTED,
        None,
        {BUYER, SUPPLIER, MEDIATOR, SYSTEM},
        "New agreement",
    ),
]

_BY_KEY: dict[tuple[str, str], list[Transition]] = {}
for _transition in TRANSITIONS:
    _BY_KEY.setdefault((_transition.action, _transition.source), []).append(_transition)

ACTIONS = sorted({t.action for t in TRANSITIONS})


def transitions_from(action: str, source: str) -> list[Transition]:
    return _BY_KEY.get((action, source), [])


def transition_for(order: Order, action: str) -> Transition | None:
    """The row that applies to this order now (first whose guard holds), or None."""
    rows = transitions_from(action, order.status)
    for row in rows:
        if row.allows(order):
            return row
    return None


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
    "confirm_receipt",
    "extend_receipt_window",
    "accept_goods",
    "rate",
    "cancel",
)


def party_refusal(order: Order, action: str, party: str) -> str | None:
    rule = PARTY_RULES.get(action)
    return rule(order, party) if rule else None


def available_actions(order: Order, party: str | None) -> list[Transition]:
    """What this party may do to this order now: the map, its guards and the party rules."""
    if party is None:
        return []
    available = []
    for action in PAGE_ACTIONS:
        row = transition_for(order, action)
        if row and party in row.actors and party_refusal(order, action, party) is None:
            available.append(row)
    return available
