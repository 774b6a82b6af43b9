"""The set-based sweeps: they refuse what the per-order services refused (a row no longer due,
a status changed meanwhile, a deadline moved, a row someone holds), write everything the slow
path wrote, cost a constant number of queries and Celery messages per batch, and stop cleanly
at a soft time limit."""

import threading
from datetime import timedelta

import pytest
import time_machine
from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection, transaction

from orders import services, tasks
from orders.models import Order, OrderEvent, OrderStatus
from orders.services import sweeps
from tests.orders.factories import order_in
from tradeassure.platform.models import DomainEvent, Notification, OutboxMessage, SystemAlert

S = OrderStatus


def _snapshot(order: Order) -> tuple:
    order.refresh_from_db()
    return (
        order.status,
        order.confirmation_due_at,
        order.cancelled_at,
        OrderEvent.objects.filter(order=order).count(),
        DomainEvent.objects.filter(subject_type="order", subject_id=order.pk).count(),
    )


@pytest.mark.django_db
def test_the_batch_writes_what_the_per_order_service_writes():
    # given two orders past their confirmation window, one swept by the set-based sweep and
    # the other by the per-order service
    fast, slow = order_in(S.PENDING_CONFIRMATION), order_in(S.PENDING_CONFIRMATION)
    due = max(fast.confirmation_due_at, slow.confirmation_due_at)
    with time_machine.travel(due, tick=False):
        assert services.order_expire_confirmation(order=slow) is True
        notes_before = Notification.objects.count()
        assert services.orders_sweep_confirmation_timeouts() == 1
    fast.refresh_from_db()
    slow.refresh_from_db()
    # then the order, its timeline row, its domain event and its notifications are the same
    fields = ("status", "cancel_reason", "confirmation_due_at", "payment_due_at")
    assert [getattr(fast, f) for f in fields] == [getattr(slow, f) for f in fields]
    assert fast.cancelled_at is not None

    def event(order):
        row = OrderEvent.objects.get(order=order, action="expire_confirmation")
        return (row.actor_party, row.from_status, row.to_status, row.note, row.data)

    assert event(fast) == event(slow)

    def published(order):
        row = DomainEvent.objects.get(
            subject_type="order", subject_id=order.pk, topic="order.cancelled"
        )
        payload = {k: v for k, v in row.payload.items() if k != "order"}
        return row.topic, payload, sorted(row.audience.values_list("pk", flat=True))

    assert published(fast)[:2] == published(slow)[:2]
    assert published(fast)[2] == sorted([fast.buyer_organisation_id, fast.supplier.organisation_id])
    fast_titles = sorted(
        Notification.objects.filter(pk__gt=0, title__startswith=fast.reference).values_list(
            "recipient_id", "title", "body"
        )
    )
    slow_titles = sorted(
        (r, t.replace(slow.reference, fast.reference), b)
        for r, t, b in Notification.objects.filter(title__startswith=slow.reference).values_list(
            "recipient_id", "title", "body"
        )
    )
    assert Notification.objects.count() - notes_before == len(fast_titles) > 0
    assert [(t, b) for _, t, b in fast_titles] == [(t, b) for _, t, b in slow_titles]


@pytest.mark.django_db
def test_an_order_whose_deadline_moved_is_not_swept():
    # given a late-shipment timer the buyer extended before it ran out
    order = order_in(S.IN_PRODUCTION)
    old_due = order.shipment_due_at
    services.order_extend_shipment_deadline(
        order=order, actor=order.buyer, new_deadline=old_due + timedelta(days=10)
    )
    before = _snapshot(order)
    # when the sweep runs at the old deadline
    with time_machine.travel(old_due + timedelta(seconds=1), tick=False):
        assert services.orders_sweep_shipment_deadlines() == 0
    # then nothing changed
    order.refresh_from_db()
    assert _snapshot(order) == before and not order.is_late
    assert not OrderEvent.objects.filter(order=order, action="flag_late").exists()


@pytest.mark.django_db
def test_an_order_whose_status_changed_is_not_swept():
    # given a shipped order the buyer confirmed before its receipt window ended
    order = order_in(S.SHIPPED)
    due = order.receipt_due_at
    services.order_confirm_receipt(order=order, actor=order.buyer)
    order.refresh_from_db()
    completion_due_at = order.completion_due_at
    # when the receipt sweep runs after the old deadline
    with time_machine.travel(due + timedelta(seconds=1), tick=False):
        assert services.orders_sweep_receipt_windows() == 0
    # then the order is as the buyer left it, with no automatic receipt
    order.refresh_from_db()
    assert order.status == S.DELIVERED and order.completion_due_at == completion_due_at
    assert not OrderEvent.objects.filter(order=order, action="auto_confirm_receipt").exists()


@pytest.mark.django_db
def test_a_row_not_yet_due_is_not_claimed_beside_due_ones():
    # given one order past its payment window and one whose window ends later
    due, later = order_in(S.AWAITING_PAYMENT), order_in(S.AWAITING_PAYMENT)
    Order.objects.filter(pk=later.pk).update(payment_due_at=due.payment_due_at + timedelta(hours=1))
    later_before = _snapshot(later)
    # when the sweep runs between the two deadlines
    with time_machine.travel(due.payment_due_at, tick=False):
        assert services.orders_sweep_payment_timeouts() == 1
    # then only the due one moved
    due.refresh_from_db()
    assert due.status == S.CANCELLED
    assert _snapshot(later) == later_before


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_order_someone_holds_is_skipped_not_waited_for_and_left_for_the_next_run():
    # given two due orders, one of them locked by a person's request in flight
    held, free = order_in(S.PENDING_CONFIRMATION), order_in(S.PENDING_CONFIRMATION)
    due = max(held.confirmation_due_at, free.confirmation_due_at)
    locked, release = threading.Event(), threading.Event()

    def person() -> None:
        try:
            with transaction.atomic():
                Order.objects.select_for_update().get(pk=held.pk)
                locked.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    thread = threading.Thread(target=person)
    thread.start()
    assert locked.wait(timeout=30)
    try:
        # when the sweep runs while the person holds the order
        with time_machine.travel(due, tick=False):
            done = services.orders_sweep_confirmation_timeouts()
    finally:
        release.set()
        thread.join(timeout=30)
    # then it moved the free one without waiting, and left the held one due
    assert done == 1
    held.refresh_from_db()
    free.refresh_from_db()
    assert (held.status, free.status) == (S.PENDING_CONFIRMATION, S.CANCELLED)
    # and the next run takes it
    with time_machine.travel(due, tick=False):
        assert services.orders_sweep_confirmation_timeouts() == 1
    held.refresh_from_db()
    assert held.status == S.CANCELLED
    assert OrderEvent.objects.filter(order=held, action="expire_confirmation").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_batch_costs_the_same_queries_and_one_dispatch_however_many_orders(
    monkeypatch, django_assert_max_num_queries
):
    from suppliers import services as supplier_services
    from tradeassure.platform import events

    kicks: list[int] = []
    recomputes: list[list[int]] = []
    monkeypatch.setattr(events, "_kick_dispatcher", lambda: kicks.append(1))
    monkeypatch.setattr(supplier_services, "_queue_recompute_many", recomputes.append)

    def sweep_counting(count: int) -> int:
        orders = [order_in(S.PENDING_CONFIRMATION) for _ in range(count)]
        due = max(order.confirmation_due_at for order in orders)
        kicks.clear()
        recomputes.clear()
        with (
            time_machine.travel(due, tick=False),
            django_assert_max_num_queries(60) as captured,
        ):
            assert services.orders_sweep_confirmation_timeouts() == count
        # each batch queued one outbox dispatch and one supplier-metrics message
        assert kicks == [1] and len(recomputes) == 1
        return len(captured)

    # given 2 due orders, then 8 more: the queries do not grow with the batch
    assert sweep_counting(8) == sweep_counting(2)


@pytest.mark.django_db
def test_a_soft_time_limit_ends_the_task_cleanly_and_the_next_run_goes_on(monkeypatch, settings):
    # given five due orders, batches of two, and a soft time limit striking in the second batch
    settings.TRADE_ASSURANCE = {**settings.TRADE_ASSURANCE, "SWEEP_SET_BATCH_SIZE": 2}
    orders = [order_in(S.PENDING_CONFIRMATION) for _ in range(5)]
    due = max(order.confirmation_due_at for order in orders)
    real = sweeps._cancel_many
    batches = {"n": 0}

    def limited(orders, now, **kwargs):
        batches["n"] += 1
        moved = real(orders, now, **kwargs)  # the batch's writes happen, then the limit strikes
        if batches["n"] == 2:
            raise SoftTimeLimitExceeded()
        return moved

    monkeypatch.setattr(sweeps, "_cancel_many", limited)
    with time_machine.travel(due, tick=False):
        # when the beat task runs, as a worker runs it
        result = tasks.sweep_confirmation_timeouts.apply()
    # then it ended normally with the first batch done, rolled the second back whole, and
    # recorded nothing as failed
    assert result.successful() and result.get() == 2
    assert not SystemAlert.objects.exists()
    assert Order.objects.filter(status=S.CANCELLED).count() == 2
    assert OrderEvent.objects.filter(action="expire_confirmation").count() == 2
    # when the next beat run comes, it moves the rest, each once
    monkeypatch.setattr(sweeps, "_cancel_many", real)
    with time_machine.travel(due + timedelta(minutes=1), tick=False):
        assert tasks.sweep_confirmation_timeouts.apply().get() == 3
    for order in orders:
        order.refresh_from_db()
        assert order.status == S.CANCELLED
        assert OrderEvent.objects.filter(order=order, action="expire_confirmation").count() == 1
    assert not OutboxMessage.objects.filter(status="failed").exists()


def test_the_sweep_tasks_have_a_hard_limit_well_above_the_soft_one():
    from disputes import tasks as dispute_tasks

    for task in (
        tasks.sweep_confirmation_timeouts,
        tasks.sweep_payment_timeouts,
        tasks.sweep_shipment_deadlines,
        tasks.sweep_receipt_windows,
        tasks.sweep_post_delivery_windows,
        dispute_tasks.sweep_escalations,
        dispute_tasks.sweep_evidence_requests,
        dispute_tasks.sweep_inspection_fees,
    ):
        # a run stops at its soft limit before the next beat tick (60 s) would start another,
        # and the hard limit never strikes a sweep that honoured the soft one
        assert task.soft_time_limit is not None and task.soft_time_limit < 60
        assert task.time_limit >= 2 * task.soft_time_limit
        assert task.acks_late


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_money_sweep_skips_an_escrow_someone_holds_and_goes_on_with_the_rest():
    from payments.models import LedgerTransaction
    from payments.services import escrow_lock_for_order

    # given three delivered orders whose claim windows closed, the first one's escrow held by a
    # buyer's request in flight
    orders = [order_in(S.DELIVERED) for _ in range(3)]
    closes = max(order.completion_due_at for order in orders)
    Order.objects.filter(pk__in=[o.pk for o in orders]).update(completion_due_at=closes)
    held = min(orders, key=lambda order: order.pk)
    locked, release = threading.Event(), threading.Event()

    def person() -> None:
        try:
            with transaction.atomic():
                escrow_lock_for_order(order_id=held.pk)
                locked.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    thread = threading.Thread(target=person)
    thread.start()
    assert locked.wait(timeout=30)
    try:
        # when the sweep runs while it is held
        with time_machine.travel(closes, tick=False):
            done = services.orders_sweep_post_delivery_windows()
    finally:
        release.set()
        thread.join(timeout=30)
    # then the other two completed and released their money; the held one waits for the next run
    assert done == 2
    for order in orders:
        order.refresh_from_db()
    assert [o.status for o in sorted(orders, key=lambda o: o.pk)] == [
        S.DELIVERED,
        S.COMPLETED,
        S.COMPLETED,
    ]
    with time_machine.travel(closes, tick=False):
        assert services.orders_sweep_post_delivery_windows() == 1
    for order in orders:
        assert (
            LedgerTransaction.objects.filter(
                escrow__reference=order.escrow_reference, kind="release"
            ).count()
            == 1
        )
