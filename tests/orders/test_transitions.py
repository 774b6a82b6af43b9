"""Every transition of the map, and every refusal: wrong status (409), wrong actor (403), guards.
A refusal changes nothing: the order row, its events, versions, shipment, rating, the domain
events, the notifications and the money are re-read and compared."""

from datetime import timedelta
from decimal import Decimal

import pytest

from orders import services
from orders.models import ContractVersion, Coverage, Order, OrderEvent, OrderStatus, Party
from orders.transitions import TRANSITIONS, transitions_from
from payments.selectors import escrow_summary
from tests.factories import BuyerFactory, MediatorFactory, SupplierStaffFactory
from tests.orders.factories import (
    ContractTermsFactory,
    LineItemTermsFactory,
    order_in,
    pay,
    place_order,
    ship,
    supplier_user_of,
    trade_assured_supplier,
    with_time_past_deadline,
)
from tests.orders.helpers import CALLS, snapshot
from tradeassure.core import clock
from tradeassure.core.errors import InvalidTransition, NotAllowed, Unprocessable, ValidationFailed
from tradeassure.platform.models import DomainEvent, Notification

pytestmark = pytest.mark.django_db
S = OrderStatus
ALL_STATUSES = [s for s in S.values]


def _order_in_any(status: str) -> Order:
    if status == S.DISPUTED:
        order = order_in(S.IN_PRODUCTION)
        return services.order_dispute_opened(order=order, actor=order.buyer)
    return order_in(status)


def _actor_for(order: Order, party: str):
    if party == Party.BUYER:
        return order.buyer
    if party == Party.SUPPLIER:
        return supplier_user_of(order)
    if party == Party.MEDIATOR:
        return MediatorFactory()
    return None


def _rightful_party(action: str) -> str:
    actors = set().union(*(t.actors for t in TRANSITIONS if t.action == action))
    for party in (Party.BUYER, Party.SUPPLIER, Party.MEDIATOR):
        if party in actors:
            return party
    raise AssertionError(action)


@pytest.mark.parametrize("status", ALL_STATUSES)
def test_every_action_not_in_the_map_for_a_status_is_refused_and_changes_nothing(status):
    # given an order in this status
    order = _order_in_any(status)
    refused = [action for action in CALLS if not transitions_from(action, status)]
    assert refused, "every status refuses something"
    for action in refused:
        before = snapshot(order)
        # when the rightful party tries an action the map does not allow from this status
        with pytest.raises(InvalidTransition) as caught:
            CALLS[action](order, _actor_for(order, _rightful_party(action)))
        # then it is a 409 with a clear message, and nothing changed
        assert caught.value.status == 409 and caught.value.message, action
        assert snapshot(order) == before, action


@pytest.mark.parametrize("status", ALL_STATUSES)
def test_every_party_the_map_does_not_name_is_refused_and_changes_nothing(status):
    # given an order in this status, and people of every kind
    order = _order_in_any(status)
    outsider = BuyerFactory()
    other_supplier = SupplierStaffFactory()
    for action in CALLS:
        rows = transitions_from(action, status)
        if not rows:
            continue
        allowed = set().union(*(row.actors for row in rows))
        wrong = [p for p in (Party.BUYER, Party.SUPPLIER, Party.MEDIATOR) if p not in allowed]
        for user in [_actor_for(order, p) for p in wrong] + [outsider, other_supplier]:
            before = snapshot(order)
            # when someone the map does not name for this action tries it
            with pytest.raises(NotAllowed):
                CALLS[action](order, user)
            # then nothing changed
            assert snapshot(order) == before, (action, user)


def _last_event(order):
    return OrderEvent.objects.filter(order=order).latest("id")


def _notified(user) -> list[str]:
    return list(Notification.objects.filter(recipient=user).values_list("title", flat=True))


def test_placing_an_order_writes_version_1_starts_the_confirmation_timer_and_tells_the_supplier():
    # given a trade-assured supplier with staff
    supplier = trade_assured_supplier()
    staff = SupplierStaffFactory(organisation=supplier.organisation)
    buyer = BuyerFactory()
    # when the buyer places an order of 100 x 12.50 + 150 shipping
    order = services.order_place(buyer=buyer, supplier=supplier, terms=ContractTermsFactory())
    # then totals are computed and the contract is version 1
    assert (order.subtotal, order.total, order.balance_amount) == (
        Decimal("1250.00"),
        Decimal("1400.00"),
        Decimal("1000.00"),
    )
    assert order.current_version.number == 1
    assert order.confirmation_due_at == order.placed_at + timedelta(days=30)
    event = _last_event(order)
    assert (event.action, event.from_status, event.to_status) == (
        "place",
        "",
        S.PENDING_CONFIRMATION,
    )
    assert DomainEvent.objects.filter(topic="order.placed", subject_id=order.pk).exists()
    assert any("new order to confirm" in title for title in _notified(staff))
    # and the supplier's record knows the order
    from suppliers.models import SupplierOrderRecord

    record = SupplierOrderRecord.objects.get(order_reference=order.escrow_reference)
    assert (record.status, record.amount) == ("open", Decimal("1400.00"))


def test_an_ineligible_supplier_or_a_bad_contract_places_nothing():
    from tests.suppliers.factories import SupplierFactory

    buyer = BuyerFactory()
    # when the supplier is not trade-assured
    with pytest.raises(NotAllowed):
        services.order_place(buyer=buyer, supplier=SupplierFactory(), terms=ContractTermsFactory())
    # when the contract breaks the rules
    supplier = trade_assured_supplier()
    bad = [
        ContractTermsFactory(shipment_deadline=clock.now() - timedelta(minutes=1)),
        ContractTermsFactory(shipment_deadline=clock.now() + timedelta(days=181)),
        ContractTermsFactory(items=[LineItemTermsFactory(quality_requirements=" ")]),
        ContractTermsFactory(items=[]),
        ContractTermsFactory(initial_payment_amount=Decimal("1400.01")),
        ContractTermsFactory(initial_payment_amount=Decimal("0")),
        ContractTermsFactory(currency="JPY", initial_payment_amount=Decimal("400.50")),
        ContractTermsFactory(items=[LineItemTermsFactory(unit_price=Decimal("0.001"))]),
        ContractTermsFactory(items=[LineItemTermsFactory(quantity=Decimal("1e30"))]),
        ContractTermsFactory(currency="XXX"),
    ]
    for terms in bad:
        with pytest.raises(ValidationFailed):
            services.order_place(buyer=buyer, supplier=supplier, terms=terms)
    # then nothing was placed
    assert Order.objects.count() == 0


def test_jpy_orders_have_no_minor_unit():
    terms = ContractTermsFactory(
        currency="JPY",
        items=[LineItemTermsFactory(quantity=Decimal("3"), unit_price=Decimal("1999"))],
        shipping_fee=Decimal("500"),
        initial_payment_amount=Decimal("2000"),
    )
    order = place_order(
        **{
            k: getattr(terms, k)
            for k in ("currency", "items", "shipping_fee", "initial_payment_amount")
        }
    )
    assert (order.total, order.balance_amount) == (Decimal("6497"), Decimal("4497"))


def test_a_quantity_below_the_products_moq_is_refused():
    from tests.suppliers.factories import ProductFactory

    supplier = trade_assured_supplier()
    product = ProductFactory(supplier=supplier, minimum_order_quantity=500)
    with pytest.raises(ValidationFailed) as caught:
        place_order(supplier=supplier, items=[LineItemTermsFactory(product_id=product.pk)])
    assert "minimum order" in str(caught.value.fields)


def test_confirm_opens_the_escrow_and_starts_the_payment_and_shipment_timers():
    order = place_order()
    order = services.order_confirm(order=order, actor=supplier_user_of(order))
    assert order.status == S.AWAITING_PAYMENT
    assert order.confirmation_due_at is None
    # 60 days, but never past halfway to the 45-day shipment deadline
    halfway = order.confirmed_at + (order.shipment_deadline - order.confirmed_at) / 2
    assert order.payment_due_at == min(order.confirmed_at + timedelta(days=60), halfway)
    assert order.shipment_due_at == order.shipment_deadline
    assert escrow_summary(escrow_reference=order.escrow_reference).exists
    assert any("pay the initial payment" in t for t in _notified(order.buyer))


def test_supplier_proposes_changes_then_the_buyer_accepts_which_confirms():
    order = place_order()
    supplier = supplier_user_of(order)
    version = CALLS["propose_changes"](order, supplier)
    order.refresh_from_db()
    assert (version.number, version.state, order.proposal_pending_from) == (
        2,
        "proposed",
        "supplier",
    )
    assert order.status == S.PENDING_CONFIRMATION
    assert order.current_version.number == 1  # not in force until accepted
    # the supplier can neither confirm the old terms nor answer its own proposal meanwhile
    for action, error in (
        ("confirm", InvalidTransition),
        ("propose_changes", InvalidTransition),
        ("accept_changes", NotAllowed),
    ):
        before = snapshot(order)
        with pytest.raises(error):
            CALLS[action](order, supplier)
        assert snapshot(order) == before
    order = services.order_accept_changes(order=order, actor=order.buyer)
    assert order.status == S.AWAITING_PAYMENT
    assert order.current_version.number == 2 and "double-walled" in order.current_version.packaging
    assert order.proposal_pending_from == ""


def test_the_buyer_declines_and_the_supplier_withdraws_proposals():
    order = place_order()
    supplier = supplier_user_of(order)
    CALLS["propose_changes"](order, supplier)
    order = services.order_decline_changes(order=order, actor=order.buyer, note="No thanks")
    assert order.status == S.PENDING_CONFIRMATION and order.current_version.number == 1
    assert ContractVersion.objects.get(order=order, number=2).state == "declined"
    CALLS["propose_changes"](order, supplier)
    order = services.order_withdraw_changes(order=order, actor=supplier)
    assert ContractVersion.objects.get(order=order, number=3).state == "withdrawn"
    order = services.order_confirm(order=order, actor=supplier)
    assert order.status == S.AWAITING_PAYMENT


def test_a_proposal_that_changes_nothing_is_refused():
    order = place_order()
    terms = services.contract_terms_of(order.current_version)
    with pytest.raises(ValidationFailed):
        services.order_propose_changes(order=order, actor=supplier_user_of(order), terms=terms)
    assert ContractVersion.objects.filter(order=order).count() == 1


def test_money_terms_are_frozen_once_money_is_held_but_other_terms_may_change():
    from dataclasses import replace

    order = order_in(S.IN_PRODUCTION)
    terms = services.contract_terms_of(order.current_version)
    pricier = replace(terms, items=[replace(terms.items[0], unit_price=Decimal("13.00"))])
    before = snapshot(order)
    with pytest.raises(Unprocessable) as caught:
        services.order_propose_changes(order=order, actor=order.buyer, terms=pricier)
    assert caught.value.code == "money_terms_frozen"
    assert snapshot(order) == before
    # packaging may still change by agreement: buyer proposes, supplier accepts
    version = services.order_propose_changes(
        order=order, actor=order.buyer, terms=replace(terms, packaging="Pallets")
    )
    order = services.order_accept_changes(order=order, actor=supplier_user_of(order))
    assert order.status == S.IN_PRODUCTION and order.current_version_id == version.pk


def test_a_pending_money_change_cannot_be_accepted_after_money_arrives():
    from dataclasses import replace

    order = order_in(S.AWAITING_PAYMENT)
    terms = services.contract_terms_of(order.current_version)
    services.order_propose_changes(
        order=order, actor=order.buyer, terms=replace(terms, shipping_fee=Decimal("100.00"))
    )
    order = pay(order)
    assert order.status == S.IN_PRODUCTION
    before = snapshot(order)
    with pytest.raises(Unprocessable):
        services.order_accept_changes(order=order, actor=supplier_user_of(order))
    assert snapshot(order) == before


@pytest.mark.parametrize("status", [S.PENDING_CONFIRMATION, S.AWAITING_PAYMENT])
@pytest.mark.parametrize("party", [Party.BUYER, Party.SUPPLIER])
def test_either_party_cancels_before_money_is_held(status, party):
    order = order_in(status)
    order = services.order_cancel(
        order=order, actor=_actor_for(order, party), reason="Changed plans"
    )
    assert order.status == S.CANCELLED and order.cancelled_at is not None
    assert all(getattr(order, f) is None for f in services.DUE_FIELDS)
    assert _last_event(order).note == "Changed plans"


def test_initial_payment_moves_the_order_into_production_and_holds_the_money():
    order = pay(order_in(S.AWAITING_PAYMENT))
    assert order.status == S.IN_PRODUCTION and order.payment_due_at is None
    assert escrow_summary(escrow_reference=order.escrow_reference).held == Decimal("400.00")
    event = _last_event(order)
    assert (event.action, event.actor_party) == ("initial_payment_captured", "system")


def test_request_balance_then_balance_payment_makes_the_order_ready_to_ship():
    order = order_in(S.IN_PRODUCTION)
    order = services.order_request_balance(order=order, actor=supplier_user_of(order))
    assert order.status == S.AWAITING_BALANCE
    assert any("pay the balance" in t for t in _notified(order.buyer))
    order = pay(order)
    assert order.status == S.READY_TO_SHIP
    assert escrow_summary(escrow_reference=order.escrow_reference).held == Decimal("1400.00")


def test_guards_balance_zero_orders_mark_ready_and_cannot_request_a_balance():
    order = order_in(S.IN_PRODUCTION, initial_payment_amount=Decimal("1400.00"))
    supplier = supplier_user_of(order)
    before = snapshot(order)
    with pytest.raises(InvalidTransition):
        services.order_request_balance(order=order, actor=supplier)
    assert snapshot(order) == before
    order = services.order_mark_ready(order=order, actor=supplier)
    assert order.status == S.READY_TO_SHIP
    # and an order with a balance cannot skip it
    other = order_in(S.IN_PRODUCTION)
    before = snapshot(other)
    with pytest.raises(InvalidTransition):
        services.order_mark_ready(order=other, actor=supplier_user_of(other))
    assert snapshot(other) == before


def test_shipping_post_delivery_keeps_the_money_and_starts_the_receipt_window():
    order = ship(order_in(S.READY_TO_SHIP))
    assert order.status == S.SHIPPED
    assert order.receipt_due_at == order.shipped_at + timedelta(days=30)
    assert order.shipment.documents.count() == 3
    assert escrow_summary(escrow_reference=order.escrow_reference).held == Decimal("1400.00")


def test_shipping_pre_shipment_releases_the_money_and_receipt_completes():
    order = ship(order_in(S.READY_TO_SHIP, coverage=Coverage.PRE_SHIPMENT))
    money = escrow_summary(escrow_reference=order.escrow_reference)
    assert (money.held, money.released) == (Decimal("0.00"), Decimal("1400.00"))
    # fee: 3% of 1400 + 1.00 = 43.00
    assert money.fees == Decimal("43.00")
    order = services.order_confirm_receipt(order=order, actor=order.buyer)
    assert order.status == S.COMPLETED and order.completion_due_at is None


def test_shipping_needs_every_document_and_a_past_ship_date():
    from orders.models import Shipment
    from tests.orders.factories import shipping_documents

    order = order_in(S.READY_TO_SHIP)
    supplier = supplier_user_of(order)
    before = snapshot(order)
    with pytest.raises(ValidationFailed) as caught:
        services.order_ship(
            order=order,
            actor=supplier,
            carrier="DHL",
            tracking_number="1",
            shipped_on=clock.now().date() + timedelta(days=2),
            documents=shipping_documents()[:2],
        )
    assert set(caught.value.fields) == {"shipped_on", "packing_list"}
    # and a document whose content is not a PDF/image is refused
    from django.core.files.uploadedfile import SimpleUploadedFile

    from orders.services import ShipmentDocumentUpload

    docs = shipping_documents()
    docs[0] = ShipmentDocumentUpload(
        kind=docs[0].kind, file=SimpleUploadedFile("invoice.pdf", b"<html><script>x</script>")
    )
    with pytest.raises(ValidationFailed):
        services.order_ship(
            order=order,
            actor=supplier,
            carrier="DHL",
            tracking_number="1",
            shipped_on=clock.now().date(),
            documents=docs,
        )
    assert snapshot(order) == before and Shipment.objects.count() == 0


def test_late_orders_the_buyer_may_cancel_with_a_full_refund():
    order = order_in(S.READY_TO_SHIP)
    # before the deadline the guard refuses
    before = snapshot(order)
    with pytest.raises(InvalidTransition):
        services.order_cancel_late_with_refund(order=order, actor=order.buyer)
    assert snapshot(order) == before
    order = with_time_past_deadline(order)
    assert order.is_late
    order = services.order_cancel_late_with_refund(order=order, actor=order.buyer)
    money = escrow_summary(escrow_reference=order.escrow_reference)
    assert order.status == S.REFUNDED
    assert (money.held, money.refunded, money.released) == (
        Decimal("0.00"),
        Decimal("1400.00"),
        Decimal("0.00"),
    )


def test_the_buyer_extends_the_shipment_deadline_which_clears_the_late_flag():
    order = with_time_past_deadline(order_in(S.IN_PRODUCTION))
    new_deadline = clock.now() + timedelta(days=14)
    order = services.order_extend_shipment_deadline(
        order=order, actor=order.buyer, new_deadline=new_deadline
    )
    assert (order.is_late, order.shipment_deadline, order.shipment_due_at) == (
        False,
        new_deadline,
        new_deadline,
    )
    before = snapshot(order)
    for bad in (clock.now() - timedelta(days=1), clock.now() + timedelta(days=200)):
        with pytest.raises(ValidationFailed):
            services.order_extend_shipment_deadline(
                order=order, actor=order.buyer, new_deadline=bad
            )
    assert snapshot(order) == before


def test_each_party_extends_the_receipt_window_once():
    order = order_in(S.SHIPPED)
    due = order.receipt_due_at
    order = services.order_extend_receipt_window(order=order, actor=order.buyer)
    order = services.order_extend_receipt_window(order=order, actor=supplier_user_of(order))
    assert order.receipt_due_at == due + timedelta(days=30)
    for user in (order.buyer, supplier_user_of(order)):
        before = snapshot(order)
        with pytest.raises(InvalidTransition):
            services.order_extend_receipt_window(order=order, actor=user)
        assert snapshot(order) == before


def test_receipt_then_acceptance_completes_and_releases_minus_the_fee():
    order = order_in(S.SHIPPED)
    order = services.order_confirm_receipt(order=order, actor=order.buyer)
    assert order.status == S.DELIVERED
    assert order.completion_due_at == order.delivered_at + timedelta(days=30)
    order = services.order_accept_goods(order=order, actor=order.buyer)
    money = escrow_summary(escrow_reference=order.escrow_reference)
    assert order.status == S.COMPLETED
    assert (money.released, money.fees, money.supplier_net) == (
        Decimal("1400.00"),
        Decimal("43.00"),
        Decimal("1357.00"),
    )
    from suppliers.models import SupplierOrderRecord

    assert (
        SupplierOrderRecord.objects.get(order_reference=order.escrow_reference).status
        == "completed"
    )


def test_rating_a_completed_order_once_feeds_the_supplier_record():
    from suppliers.models import SupplierOrderRecord

    order = order_in(S.COMPLETED)
    with pytest.raises(ValidationFailed):
        services.order_rate(order=order, actor=order.buyer, score=6)
    services.order_rate(order=order, actor=order.buyer, score=4, comment="Good")
    assert SupplierOrderRecord.objects.get(order_reference=order.escrow_reference).rating == 4
    before = snapshot(order)
    with pytest.raises(InvalidTransition):
        services.order_rate(order=order, actor=order.buyer, score=5)
    assert snapshot(order) == before
