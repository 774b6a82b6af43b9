"""The deadline sweeps: at the edges of each deadline (time-machine), twice in a row, while a
dispute pauses the timers, past a failing order, and from two threads at once on PostgreSQL."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection

from orders import services
from orders.models import Coverage, Order, OrderEvent, OrderStatus
from orders.services import sweeps
from payments.models import LedgerTransaction
from payments.selectors import escrow_summary
from tests.orders.factories import order_in
from tradeassure.platform.models import SystemAlert

S = OrderStatus

# kind: (status to build, due field, sweep, the event's action, status after)
SWEEPS = {
    "confirmation": (
        S.PENDING_CONFIRMATION,
        "confirmation_due_at",
        services.orders_sweep_confirmation_timeouts,
        "expire_confirmation",
        S.CANCELLED,
    ),
    "payment": (
        S.AWAITING_PAYMENT,
        "payment_due_at",
        services.orders_sweep_payment_timeouts,
        "expire_payment",
        S.CANCELLED,
    ),
    "shipment": (
        S.IN_PRODUCTION,
        "shipment_due_at",
        services.orders_sweep_shipment_deadlines,
        "flag_late",
        S.IN_PRODUCTION,
    ),
    "receipt": (
        S.SHIPPED,
        "receipt_due_at",
        services.orders_sweep_receipt_windows,
        "auto_confirm_receipt",
        S.DELIVERED,
    ),
    "post_delivery": (
        S.DELIVERED,
        "completion_due_at",
        services.orders_sweep_post_delivery_windows,
        "complete_after_window",
        S.COMPLETED,
    ),
}


def _events(order, action) -> int:
    return OrderEvent.objects.filter(order=order, action=action).count()


@pytest.mark.django_db
@pytest.mark.parametrize("kind", SWEEPS)
def test_each_sweep_acts_exactly_at_its_deadline_and_only_once(kind):
    status, due_field, sweep, action, after = SWEEPS[kind]
    # given an order whose timer runs
    order = order_in(status)
    due = getattr(order, due_field)
    assert due is not None
    # when the sweep runs one second before the deadline, then nothing happens
    with time_machine.travel(due - timedelta(seconds=1), tick=False):
        assert sweep() == 0
    order.refresh_from_db()
    assert order.status == status and _events(order, action) == 0
    # when it runs at the deadline, then the order moves once
    with time_machine.travel(due, tick=False):
        assert sweep() == 1
    order.refresh_from_db()
    assert order.status == after and _events(order, action) == 1
    assert getattr(order, due_field) is None
    # when it runs again (a second beat, a retried task), then nothing more happens
    with time_machine.travel(due + timedelta(minutes=1), tick=False):
        assert sweep() == 0
    order.refresh_from_db()
    assert order.status == after and _events(order, action) == 1


@pytest.mark.django_db
def test_the_shipment_sweep_flags_late_and_tells_both_parties():
    from tradeassure.platform.models import Notification

    order = order_in(S.READY_TO_SHIP)
    with time_machine.travel(order.shipment_due_at + timedelta(seconds=1), tick=False):
        services.orders_sweep_shipment_deadlines()
    order.refresh_from_db()
    assert order.is_late and order.late_flagged_at is not None
    titles = list(Notification.objects.values_list("recipient__organisation_id", "title"))
    assert any(
        org == order.buyer_organisation_id and "cancel with a full refund" in t for org, t in titles
    )
    assert any(
        org == order.supplier.organisation_id and "deadline passed" in t for org, t in titles
    )


@pytest.mark.django_db
def test_the_post_delivery_sweep_releases_the_money_once():
    order = order_in(S.DELIVERED)
    with time_machine.travel(order.completion_due_at, tick=False):
        services.orders_sweep_post_delivery_windows()
        services.orders_sweep_post_delivery_windows()
    money = escrow_summary(escrow_reference=order.escrow_reference)
    assert (money.released, money.held) == (Decimal("1400.00"), Decimal("0.00"))
    assert (
        LedgerTransaction.objects.filter(
            escrow__reference=order.escrow_reference, kind="release"
        ).count()
        == 1
    )


@pytest.mark.django_db
def test_a_pre_shipment_order_completes_when_the_receipt_window_ends():
    order = order_in(S.SHIPPED, coverage=Coverage.PRE_SHIPMENT)
    with time_machine.travel(order.receipt_due_at, tick=False):
        assert services.orders_sweep_receipt_windows() == 1
    order.refresh_from_db()
    assert order.status == S.COMPLETED and order.completion_due_at is None


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["shipment", "receipt", "post_delivery"])
def test_timers_are_paused_while_a_dispute_is_open(kind):
    status, due_field, sweep, action, _after = SWEEPS[kind]
    order = order_in(status)
    due = getattr(order, due_field)
    order = services.order_dispute_opened(order=order, actor=order.buyer)
    # when the deadline passes during the dispute, then the sweep does nothing
    with time_machine.travel(due + timedelta(days=1), tick=False):
        assert sweep() == 0
        # when the dispute ends a day after the deadline, the timer resumes with what was left
        order = services.order_dispute_resolved(
            order=order, actor=None, outcome="resume", dispute_reference="D-9"
        )
        assert order.status == status and _events(order, action) == 0
        resumed_due = getattr(order, due_field)
        assert resumed_due > due + timedelta(days=1) - timedelta(seconds=1)


@pytest.mark.django_db
def test_a_failing_order_does_not_block_the_others_and_is_retried(monkeypatch):
    # given two late orders, the first of which breaks any batch it is in (and fails once on
    # its own as well, as a worker losing its database connection would)
    first, second = order_in(S.IN_PRODUCTION), order_in(S.IN_PRODUCTION)
    real_batch, real_one = sweeps._flag_late_many, services.order_flag_late
    calls = {"failed": False}

    def batch_breaks(orders, now):
        if any(order.pk == first.pk for order in orders):
            raise RuntimeError("batch lost its database connection")
        return real_batch(orders, now)

    def crash_once(*, order):
        if order.pk == first.pk and not calls["failed"]:
            calls["failed"] = True
            raise RuntimeError("worker lost its database connection")
        return real_one(order=order)

    monkeypatch.setattr(sweeps, "_flag_late_many", batch_breaks)
    monkeypatch.setattr(sweeps, "order_flag_late", crash_once)
    due = max(first.shipment_due_at, second.shipment_due_at)
    with time_machine.travel(due, tick=False):
        # the first run rolls the batch back, goes one by one: skips the failing order, flags
        # the other, and tells staff
        assert services.orders_sweep_shipment_deadlines() == 1
        assert SystemAlert.objects.filter(source="orders.sweep_shipment_deadlines").count() == 1
        first.refresh_from_db()
        second.refresh_from_db()
        assert not first.is_late and second.is_late
        assert _events(second, "flag_late") == 1
        # the next run catches up
        assert services.orders_sweep_shipment_deadlines() == 1
    first.refresh_from_db()
    assert first.is_late and _events(first, "flag_late") == 1


@pytest.mark.django_db
def test_the_sweep_tasks_call_the_sweeps():
    from orders import tasks

    order = order_in(S.PENDING_CONFIRMATION)
    with time_machine.travel(order.confirmation_due_at, tick=False):
        assert tasks.sweep_confirmation_timeouts.delay().get() == 1
        for task in (
            tasks.sweep_payment_timeouts,
            tasks.sweep_shipment_deadlines,
            tasks.sweep_receipt_windows,
            tasks.sweep_post_delivery_windows,
        ):
            assert task.delay().get() == 0


def test_the_sweeps_are_declared_on_the_app_config_every_minute():
    from django.apps import apps

    declared = {t.task: t.every_seconds for t in apps.get_app_config("orders").periodic_tasks}
    assert declared == {
        "orders.sweep_confirmation_timeouts": 60,
        "orders.sweep_payment_timeouts": 60,
        "orders.sweep_shipment_deadlines": 60,
        "orders.sweep_receipt_windows": 60,
        "orders.sweep_post_delivery_windows": 60,
        "orders.sweep_preshipment_inspection_fees": 60,
    }


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", SWEEPS)
def test_two_sweeps_at_once_apply_each_transition_exactly_once(kind, settings):
    status, due_field, sweep, action, after = SWEEPS[kind]
    # given several due orders, and small batches so both threads loop
    settings.TRADE_ASSURANCE = {
        **settings.TRADE_ASSURANCE,
        "SWEEP_BATCH_SIZE": 2,
        "SWEEP_SET_BATCH_SIZE": 2,
    }
    orders = [order_in(status) for _ in range(5)]
    due = max(getattr(order, due_field) for order in orders)
    barrier = threading.Barrier(2)
    results, errors = [], []

    def run():
        try:
            barrier.wait(timeout=10)
            results.append(sweep())
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    # when two beat processes sweep at the same moment
    with time_machine.travel(due + timedelta(seconds=1), tick=False):
        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    # then every order moved exactly once, and the two sweeps shared the work
    assert errors == []
    assert sum(results) == len(orders)
    for order in orders:
        order.refresh_from_db()
        assert order.status == after
        assert _events(order, action) == 1
        if kind == "post_delivery":
            assert (
                LedgerTransaction.objects.filter(
                    escrow__reference=order.escrow_reference, kind="release"
                ).count()
                == 1
            )
    assert Order.objects.filter(**{f"{due_field}__isnull": False}, status=status).count() == 0
