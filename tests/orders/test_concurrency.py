"""Races between people, timers and arriving money, on PostgreSQL with real threads."""

import threading
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial

import pytest
from django.db import connection, transaction

from orders import services
from orders.models import Order, OrderEvent, OrderStatus
from payments.models import LedgerTransaction
from payments.selectors import escrow_summary, ledger_verify
from tests.disputes.factories import Parties, open_dispute
from tests.orders.factories import order_in, supplier_user_of, with_time_past_deadline
from tradeassure.core import clock
from tradeassure.core.errors import DomainError
from tradeassure.platform.models import SystemAlert

S = OrderStatus
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _race(*calls):
    barrier = threading.Barrier(len(calls))
    outcomes: list = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait(timeout=10)
            outcomes[index] = ("ok", call())
        except Exception as error:
            outcomes[index] = ("error", error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def _capture_now(payment):
    from payments.providers.sandbox import event_body
    from payments.tasks import sandbox_deliver_event

    return sandbox_deliver_event(
        event_body(
            "payment.captured",
            payment.provider_reference,
            amount=payment.amount,
            currency=payment.currency,
            charge_id=f"ch_race_{payment.pk}",
        )
    )


def test_a_balance_arriving_while_the_buyer_cancels_a_late_order_is_never_kept():
    # given an order flagged late in production (waiting for the balance never makes it late),
    # now awaiting its balance, with the buyer's balance payment on its way
    order = with_time_past_deadline(order_in(S.IN_PRODUCTION))
    order = services.order_request_balance(order=order, actor=supplier_user_of(order))
    assert order.is_late
    payment = services.order_payment_start(order=order, actor=order.buyer, method="card")
    # when the money arrives at the same moment as the buyer cancels with a full refund
    outcomes = _race(
        lambda: _capture_now(payment),
        lambda: services.order_cancel_late_with_refund(order=order, actor=order.buyer),
    )
    # then no deadlock or error, the order is refunded, and every cent captured went back
    assert [kind for kind, _ in outcomes] == ["ok", "ok"], outcomes
    order.refresh_from_db()
    money = escrow_summary(escrow_reference=order.escrow_reference)
    assert order.status == S.REFUNDED
    assert money.captured == Decimal("1400.00")
    assert (money.held, money.refunded, money.released) == (
        Decimal("0.00"),
        Decimal("1400.00"),
        Decimal("0.00"),
    )


@contextmanager
def _clocks(monkeypatch, by_thread: dict[str, datetime]):
    """Each named thread reads its own `clock.now()` (the moment its request was sent); no
    sleeping or timing is involved, so the race is the same on a loaded machine."""
    real = clock.now
    monkeypatch.setattr(
        clock, "now", lambda: by_thread.get(threading.current_thread().name) or real()
    )
    yield


def _race_named(calls: dict[str, Callable[[], object]]) -> dict[str, tuple[str, object]]:
    """Run the calls on real threads named by their keys, released together by a barrier."""
    barrier = threading.Barrier(len(calls))
    outcomes: dict[str, tuple[str, object]] = {}

    def run(name: str, call: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=10)
            outcomes[name] = ("ok", call())
        except DomainError as refusal:  # a clean refusal a person reads
            outcomes[name] = ("refused", refusal)
        except BaseException as error:  # asserted below: never allowed
            outcomes[name] = ("error", error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=item, name=item[0]) for item in calls.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def _released(order) -> int:
    return LedgerTransaction.objects.filter(
        escrow__reference=order.escrow_reference, kind="release"
    ).count()


def _closing_orders(count: int) -> tuple[list, datetime]:
    """`count` delivered orders whose claim windows close at the same moment."""
    orders = [order_in(S.DELIVERED) for _ in range(count)]
    closes = max(order.completion_due_at for order in orders)
    Order.objects.filter(pk__in=[o.pk for o in orders]).update(completion_due_at=closes)
    return orders, closes


def test_buyers_accepting_or_disputing_as_the_claim_window_closes_race_the_sweep_cleanly(
    monkeypatch, settings
):
    # given six delivered orders whose claim windows close now, and small sweep batches
    settings.TRADE_ASSURANCE = {**settings.TRADE_ASSURANCE, "SWEEP_SET_BATCH_SIZE": 2}
    orders, closes = _closing_orders(6)
    accepting, disputing = orders[:3], orders[3:]
    # when each buyer acts just before the close while the sweep runs just after it
    calls: dict[str, Callable[[], object]] = {"sweep": services.orders_sweep_post_delivery_windows}
    for order in accepting:
        calls[f"accept-{order.pk}"] = partial(
            services.order_accept_goods, order=order, actor=order.buyer
        )
    for order in disputing:
        calls[f"dispute-{order.pk}"] = partial(
            open_dispute, Parties(order=order, buyer=order.buyer, supplier_user=order.buyer)
        )
    moments = {name: closes - timedelta(milliseconds=100) for name in calls}
    moments["sweep"] = closes + timedelta(milliseconds=100)
    with _clocks(monkeypatch, moments):
        outcomes = _race_named(calls)
    # then neither side failed: no deadlock, no exception; the loser got a refusal or a no-op
    assert all(kind in ("ok", "refused") for kind, _ in outcomes.values()), outcomes
    assert outcomes["sweep"][0] == "ok"
    assert not SystemAlert.objects.exists()
    swept = 0
    for order in orders:
        order.refresh_from_db()
        name = f"{'accept' if order in accepting else 'dispute'}-{order.pk}"
        money = escrow_summary(escrow_reference=order.escrow_reference)
        if outcomes[name][0] == "ok" and order in disputing:
            # the buyer's claim came first: the order is frozen and nothing was released
            assert order.status == S.DISPUTED and _released(order) == 0
            assert money.held == Decimal("1400.00")
            continue
        # otherwise the order completed once, by the buyer or by the sweep, and paid out once
        assert order.status == S.COMPLETED, (name, outcomes[name])
        completions = OrderEvent.objects.filter(
            order=order, action__in=["accept_goods", "complete_after_window"]
        )
        assert completions.count() == 1
        swept += completions.filter(action="complete_after_window").count()
        assert _released(order) == 1
        assert (money.released, money.held) == (Decimal("1400.00"), Decimal("0.00"))
        if outcomes[name][0] == "refused":
            assert completions.get().action == "complete_after_window"
    assert outcomes["sweep"][1] == swept
    assert ledger_verify().ok


def test_the_buyer_accepting_while_the_claim_window_closes_releases_once(monkeypatch):
    # given a delivered order whose claim window closes now
    orders, closes = _closing_orders(1)
    order = orders[0]
    # when the buyer accepts the goods (sent just before the close) while the sweep runs
    with _clocks(
        monkeypatch,
        {"buyer": closes - timedelta(milliseconds=50), "sweep": closes},
    ):
        outcomes = _race_named(
            {
                "buyer": lambda: services.order_accept_goods(order=order, actor=order.buyer),
                "sweep": services.orders_sweep_post_delivery_windows,
            }
        )
    # then both finished without an error: one completed the order, the other was refused or
    # found nothing to do; the money was released once and the ledger balances
    assert outcomes["sweep"][0] == "ok", outcomes
    assert outcomes["buyer"][0] in ("ok", "refused"), outcomes
    order.refresh_from_db()
    completions = OrderEvent.objects.filter(
        order=order, action__in=["accept_goods", "complete_after_window"]
    ).count()
    money = escrow_summary(escrow_reference=order.escrow_reference)
    assert order.status == S.COMPLETED and completions == 1
    assert outcomes["sweep"][1] == (0 if outcomes["buyer"][0] == "ok" else 1)
    assert (money.released, money.held) == (Decimal("1400.00"), Decimal("0.00"))
    assert _released(order) == 1
    assert not SystemAlert.objects.exists()
    assert ledger_verify().ok


def test_two_suppliers_confirming_at_once_confirm_once():
    order = order_in(S.PENDING_CONFIRMATION)
    first, second = supplier_user_of(order), supplier_user_of(order)
    outcomes = _race(
        lambda: services.order_confirm(order=order, actor=first),
        lambda: services.order_confirm(order=order, actor=second),
    )
    kinds = sorted(kind for kind, _ in outcomes)
    assert kinds == ["error", "ok"]
    assert OrderEvent.objects.filter(order=order, action="confirm").count() == 1


def test_a_claim_sent_before_the_window_closed_is_judged_when_sent_not_after_waiting(monkeypatch):
    from payments.services import escrow_lock_for_order

    # given a delivered order whose claim window closes at `closes`, and a request in flight
    # holding its escrow (as a sweep closing the window would)
    orders, closes = _closing_orders(1)
    order = orders[0]
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        try:
            with transaction.atomic():
                escrow_lock_for_order(order_id=order.pk)
                held.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    # the buyer sends the claim just before the close; every later reading of the clock (after
    # the wait for the lock) is past it
    readings = iter([closes - timedelta(milliseconds=100)])
    real = clock.now
    monkeypatch.setattr(
        clock,
        "now",
        lambda: (
            next(readings, closes + timedelta(seconds=1))
            if threading.current_thread().name == "buyer"
            else real()
        ),
    )
    outcome: list = []

    def buyer() -> None:
        try:
            outcome.append(("ok", open_dispute(Parties(order, order.buyer, order.buyer))))
        except BaseException as error:  # asserted below
            outcome.append(("error", error))
        finally:
            connection.close()

    blocker = threading.Thread(target=holder)
    blocker.start()
    assert held.wait(timeout=30)
    claimant = threading.Thread(target=buyer, name="buyer")
    claimant.start()
    _wait_until_blocked_on_a_lock()
    release.set()
    blocker.join(timeout=30)
    claimant.join(timeout=60)
    # then the claim was accepted: it was sent inside the window
    assert outcome and outcome[0][0] == "ok", outcome
    order.refresh_from_db()
    assert order.status == S.DISPUTED and _released(order) == 0


def _wait_until_blocked_on_a_lock() -> None:
    """Until another backend of this test waits on a row lock (the buyer behind the holder)."""
    with connection.cursor() as cursor:
        for _ in range(3000):
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            threading.Event().wait(0.01)
    raise AssertionError("the buyer never waited for the lock")
