"""Shared test helpers: call each transition by name, and snapshot everything it could change."""

from dataclasses import replace
from datetime import timedelta

from orders import services
from orders.models import ContractVersion, Order, OrderEvent, OrderRating, Shipment
from payments.selectors import escrow_summary
from tests.orders.factories import shipping_documents
from tradeassure.core import clock
from tradeassure.platform.models import DomainEvent, Notification


def _changed_terms(order: Order):
    terms = services.contract_terms_of(order.current_version)
    return replace(terms, packaging=terms.packaging + " (double-walled cartons)")


# Each transition a person (or the disputes app) starts, called with sensible arguments.
CALLS = {
    "confirm": lambda order, user: services.order_confirm(order=order, actor=user),
    "propose_changes": lambda order, user: services.order_propose_changes(
        order=order, actor=user, terms=_changed_terms(order), note="Better cartons"
    ),
    "accept_changes": lambda order, user: services.order_accept_changes(order=order, actor=user),
    "decline_changes": lambda order, user: services.order_decline_changes(order=order, actor=user),
    "withdraw_changes": lambda order, user: services.order_withdraw_changes(
        order=order, actor=user
    ),
    "cancel": lambda order, user: services.order_cancel(order=order, actor=user, reason="No"),
    "request_balance": lambda order, user: services.order_request_balance(order=order, actor=user),
    "mark_ready": lambda order, user: services.order_mark_ready(order=order, actor=user),
    "ship": lambda order, user: services.order_ship(
        order=order,
        actor=user,
        carrier="DHL",
        tracking_number="JD0146000",
        shipped_on=clock.now().date(),
        documents=shipping_documents(),
    ),
    "extend_shipment_deadline": lambda order, user: services.order_extend_shipment_deadline(
        order=order, actor=user, new_deadline=order.shipment_deadline + timedelta(days=10)
    ),
    "cancel_late_with_refund": lambda order, user: services.order_cancel_late_with_refund(
        order=order, actor=user
    ),
    "confirm_receipt": lambda order, user: services.order_confirm_receipt(order=order, actor=user),
    "extend_receipt_window": lambda order, user: services.order_extend_receipt_window(
        order=order, actor=user
    ),
    "accept_goods": lambda order, user: services.order_accept_goods(order=order, actor=user),
    "rate": lambda order, user: services.order_rate(order=order, actor=user, score=4),
    "dispute_opened": lambda order, user: services.order_dispute_opened(order=order, actor=user),
    "dispute_resolved_resume": lambda order, user: services.order_dispute_resolved(
        order=order, actor=user, outcome="resume", dispute_reference="D-1"
    ),
    "dispute_resolved_refund": lambda order, user: services.order_dispute_resolved(
        order=order, actor=user, outcome="full_refund", dispute_reference="D-1"
    ),
    "dispute_resolved_replacement": lambda order, user: services.order_dispute_resolved(
        order=order, actor=user, outcome="replacement", dispute_reference="D-1"
    ),
    "dispute_resolved_complete": lambda order, user: services.order_dispute_resolved(
        order=order, actor=user, outcome="release", dispute_reference="D-1"
    ),
    "contract_amended_by_dispute": lambda order, user: services.order_contract_amend_by_dispute(
        order=order, actor=user, terms=_changed_terms(order), dispute_reference="D-1"
    ),
}


def snapshot(order: Order) -> dict:
    """Everything a transition could change, re-read from the database."""
    fresh = Order.objects.get(pk=order.pk)
    return {
        "order": {f.attname: getattr(fresh, f.attname) for f in Order._meta.concrete_fields},
        "events": list(OrderEvent.objects.filter(order=order).values_list("id", flat=True)),
        "versions": list(
            ContractVersion.objects.filter(order=order).values_list("number", "state")
        ),
        "shipments": Shipment.objects.filter(order=order).count(),
        "ratings": OrderRating.objects.filter(order=order).count(),
        "domain_events": DomainEvent.objects.count(),
        "notifications": Notification.objects.count(),
        "money": escrow_summary(escrow_reference=order.escrow_reference),
    }
