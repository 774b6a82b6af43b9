"""Gold membership expiry and revoked verification change Trade Assurance by themselves: a
daily sweep, recorded in the status history, warned 30 and 7 days before, once each; orders in
progress keep their protection and new ones are refused in plain words."""

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.urls import reverse

from orders import services as order_services
from orders.models import OrderStatus
from suppliers import services
from suppliers.models import Supplier, SupplierStatusChange, TradeAssuranceStatus
from tests.factories import BuyerFactory, VettingFactory
from tests.orders.factories import ContractTermsFactory, order_in, ship
from tests.suppliers.factories import (
    TradeAssuredSupplierFactory,
    VerificationDocumentFactory,
    supplier_staff_for,
)
from tradeassure.core import clock
from tradeassure.core.errors import NotAllowed
from tradeassure.platform.models import Notification, OutboxMessage
from tradeassure.platform.outbox import queued_emails

pytestmark = pytest.mark.django_db


def _gold_until(days: int) -> Supplier:
    return TradeAssuredSupplierFactory(
        membership_expires_on=clock.now().date() + timedelta(days=days)
    )


def _titles(user) -> list[str]:
    return list(Notification.objects.filter(recipient=user).values_list("title", flat=True))


def _anonymous_get(url: str) -> str:
    return Client().get(url).content.decode()


def _emails_to(user) -> int:
    queued = queued_emails(OutboxMessage.objects.filter(channel="email"))
    return sum(1 for email in queued if email["to"] == user.email)


def test_supplier_is_warned_30_and_7_days_before_expiry_once_each():
    # given a Trade Assurance supplier whose gold membership ends in 40 days
    supplier = _gold_until(40)
    staff = supplier_staff_for(supplier)
    start = clock.now()
    # when the daily sweep runs every day until the day before expiry (twice on some days)
    for day in range(40):
        with time_machine.travel(start + timedelta(days=day), tick=False):
            services.suppliers_sweep_memberships()
            services.suppliers_sweep_memberships()
    # then there were exactly two warnings, 30 and 7 days before, each by notification and email
    titles = _titles(staff)
    assert titles.count("Gold membership ends in 30 days") == 1
    assert titles.count("Gold membership ends in 7 days") == 1
    assert len([t for t in titles if t.startswith("Gold membership ends")]) == 2
    assert _emails_to(staff) == 2
    # and nothing changed yet: still gold, still Trade Assurance
    supplier.refresh_from_db()
    assert (supplier.membership, supplier.ta_status) == ("gold", TradeAssuranceStatus.APPROVED)


def test_a_supplier_inside_7_days_gets_only_the_7_day_warning():
    supplier = _gold_until(5)
    staff = supplier_staff_for(supplier)
    assert services.suppliers_sweep_memberships() == 1
    assert _titles(staff) == ["Gold membership ends in 5 days"]


def test_a_renewal_re_arms_the_warnings():
    supplier = _gold_until(6)
    staff = supplier_staff_for(supplier)
    services.suppliers_sweep_memberships()
    services.supplier_membership_set(
        actor=VettingFactory(),
        supplier=supplier,
        membership="gold",
        expires_on=clock.now().date() + timedelta(days=3),
        reason="Renewed for a short term.",
    )
    services.suppliers_sweep_memberships()
    assert len(_titles(staff)) == 2


def test_expired_gold_membership_suspends_trade_assurance_and_is_recorded():
    # given a Trade Assurance supplier whose gold membership ended yesterday
    supplier = _gold_until(-1)
    staff = supplier_staff_for(supplier)
    # when the daily sweep runs (twice: the second changes nothing)
    assert services.suppliers_sweep_memberships() == 1
    assert services.suppliers_sweep_memberships() == 0
    # then it is free tier and suspended, both recorded as automatic changes
    supplier.refresh_from_db()
    assert supplier.membership == Supplier.Membership.FREE
    assert supplier.ta_status == TradeAssuranceStatus.SUSPENDED
    changes = {c.field: c for c in SupplierStatusChange.objects.filter(supplier=supplier)}
    assert changes["membership"].to_value == "free:" and changes["membership"].actor is None
    assert changes["trade_assurance"].to_value == "suspended"
    assert "gold membership has lapsed" in changes["trade_assurance"].reason
    # and the supplier was told
    assert "Trade Assurance suspended" in _titles(staff)
    # and its public profile no longer offers protected orders
    body = _anonymous_get(reverse("suppliers:profile", args=[supplier.pk]))
    assert "Start a protected order" not in body
    assert "not accepting new protected orders" in body


def test_revoked_verification_suspends_trade_assurance_at_once():
    supplier = TradeAssuredSupplierFactory()
    VerificationDocumentFactory(supplier=supplier)
    services.supplier_verification_decide(
        actor=VettingFactory(), supplier=supplier, approve=False, reason="Licence withdrawn."
    )
    supplier.refresh_from_db()
    assert supplier.ta_status == TradeAssuranceStatus.SUSPENDED
    change = SupplierStatusChange.objects.get(supplier=supplier, field="trade_assurance")
    assert "verification was revoked" in change.reason


def test_orders_in_progress_keep_protection_and_new_orders_are_refused_plainly(client):
    # given an order in production with a supplier whose membership then lapses
    order = order_in(OrderStatus.READY_TO_SHIP)
    supplier = order.supplier
    Supplier.objects.filter(pk=supplier.pk).update(
        membership_expires_on=clock.now().date() - timedelta(days=1)
    )
    services.suppliers_sweep_memberships()
    supplier.refresh_from_db()
    assert supplier.ta_status == TradeAssuranceStatus.SUSPENDED
    # then the order in progress goes on to the end under protection
    order = ship(order)
    order = order_services.order_confirm_receipt(order=order, actor=order.buyer)
    order = order_services.order_accept_goods(order=order, actor=order.buyer)
    assert order.status == OrderStatus.COMPLETED
    # and a new order is refused in plain words
    buyer = BuyerFactory()
    with pytest.raises(NotAllowed) as refused:
        order_services.order_place(buyer=buyer, supplier=supplier, terms=ContractTermsFactory())
    message = refused.value.message
    assert "not accepting new protected orders" in message and "membership has lapsed" in message
    assert "—" not in message and "gold_membership" not in message
    # and the order form opened by URL explains, with no form to fill in
    client.force_login(buyer)
    response = client.get(reverse("orders:create") + f"?supplier={supplier.pk}")
    body = response.content.decode()
    assert response.status_code == 200
    assert "not accepting new protected orders" in body
    assert "Orders already in progress with this supplier keep their protection" in body
    assert 'name="step"' not in body


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_change_and_warn_once():
    expired, expiring = _gold_until(-1), _gold_until(20)
    staff = supplier_staff_for(expiring)
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run():
        try:
            barrier.wait()
            services.suppliers_sweep_memberships()
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert SupplierStatusChange.objects.filter(supplier=expired, field="membership").count() == 1
    assert (
        SupplierStatusChange.objects.filter(supplier=expired, field="trade_assurance").count() == 1
    )
    assert _titles(staff) == ["Gold membership ends in 20 days"]


def test_the_demo_shows_the_lapsed_membership_as_free_right_away():
    from suppliers import demo
    from tradeassure.platform.demo import seed_demo_users

    demo.seed(seed_demo_users())
    dongguan = Supplier.objects.get(legal_name="Dongguan Happy Toys Factory")
    assert dongguan.membership == Supplier.Membership.FREE
    assert SupplierStatusChange.objects.filter(
        supplier=dongguan, field="membership", to_value="free:", actor=None
    ).exists()
