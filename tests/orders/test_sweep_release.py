"""The post-delivery sweep's set-based release: it refuses what the per-order completion refuses
(the refused order is left exactly as it was and the rest of the batch completes), it costs the
same statements however many orders the batch holds, and it releases each order's money once
when a buyer accepts the goods or a second sweep runs at the same moment (real threads, each
step of the interleaving forced by events, never by sleeping)."""

import threading
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders import services
from orders.models import Order, OrderEvent, OrderStatus
from orders.services import receipt, sweeps
from orders.services._engine import order_money_key
from payments import services as payment_services
from payments.error_codes import PaymentErrorCode
from payments.models import Escrow, LedgerTransaction
from payments.selectors import escrow_summary, ledger_verify
from tests.disputes.factories import Parties, open_dispute
from tests.orders.factories import order_in
from tests.payments.factories import escrow_cache_shift
from tradeassure.core import clock
from tradeassure.core.errors import DomainError
from tradeassure.platform.error_codes import PlatformErrorCode
from tradeassure.platform.models import SystemAlert

S = OrderStatus
HELD = Decimal("1400.00")


def _closing(count: int) -> list[Order]:
    """`count` delivered orders (USD 1,400 held each) whose claim windows close together."""
    orders = [order_in(S.DELIVERED) for _ in range(count)]
    closes = max(order.completion_due_at for order in orders)
    Order.objects.filter(pk__in=[o.pk for o in orders]).update(completion_due_at=closes)
    for order in orders:
        order.refresh_from_db()
    return orders


def _due(orders: list[Order]):
    return time_machine.travel(max(o.completion_due_at for o in orders), tick=False)


def _buyer_just_before_the_close(monkeypatch, orders: list[Order]) -> None:
    """The sweeps' clock reads the close; the buyer's thread reads a second before it (the
    moment the buyer sent the acceptance). No sleeping: each thread reads its own moment."""
    closes = max(o.completion_due_at for o in orders)
    monkeypatch.setattr(
        clock,
        "now",
        lambda: (
            closes - timedelta(seconds=1) if threading.current_thread().name == "buyer" else closes
        ),
    )


def _state(order: Order) -> tuple:
    """Everything completing this order could change."""
    fresh = Order.objects.get(pk=order.pk)
    return (
        fresh.status,
        fresh.completed_at,
        fresh.completion_due_at,
        list(OrderEvent.objects.filter(order=order).values_list("pk", flat=True)),
        escrow_summary(escrow_reference=order.escrow_reference),
        sorted(
            LedgerTransaction.objects.filter(escrow__reference=order.escrow_reference).values_list(
                "idempotency_key", "amount"
            )
        ),
    )


def _releases(order: Order) -> int:
    return LedgerTransaction.objects.filter(
        escrow__reference=order.escrow_reference, kind="release"
    ).count()


def _on_hold(order: Order) -> None:
    Escrow.objects.filter(reference=order.escrow_reference).update(on_hold=True)


def _disputed(order: Order) -> None:
    open_dispute(Parties(order=order, buyer=order.buyer, supplier_user=order.buyer))


def _frozen(order: Order) -> None:
    payment_services.escrow_freeze(escrow_reference=order.escrow_reference)


def _key_used_for_part(order: Order) -> None:
    payment_services.escrow_release(
        escrow_reference=order.escrow_reference,
        amount=Decimal("100.00"),
        idempotency_key=order_money_key(order, "release", "completion"),
    )


def _cache_below_entries(order: Order) -> None:
    escrow_cache_shift(Escrow.objects.get(reference=order.escrow_reference), Decimal("-1.00"))


# How each case is refused: by the per-order completion (the error code it raises, or None when
# it finds nothing due) and by the sweep (alerted to staff, or not claimed at all).
REFUSALS: dict[str, tuple[Callable[[Order], None], str | None, bool]] = {
    "escrow on hold for review": (_on_hold, PaymentErrorCode.ESCROW_ON_HOLD, False),
    "order disputed": (_disputed, None, False),
    "escrow frozen": (_frozen, PaymentErrorCode.ESCROW_FROZEN, True),
    "release key already used for part": (
        _key_used_for_part,
        PlatformErrorCode.IDEMPOTENCY_KEY_REUSED,
        True,
    ),
    "escrow balance below its entries": (
        _cache_below_entries,
        PaymentErrorCode.INSUFFICIENT_ESCROW,
        True,
    ),
}


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("case", REFUSALS)
def test_the_sweep_refuses_what_the_per_order_completion_refuses(case):
    # given three delivered orders whose claim windows closed, the middle one in a state whose
    # completion must be refused
    make, code, alerted = REFUSALS[case]
    first, refused, last = _closing(3)
    make(refused)
    before = _state(refused)
    with _due([first, refused, last]):
        # when the per-order completion tries it, it is refused (or finds nothing due)
        if code is None:
            assert services.order_complete_after_window(order=refused) is False
        else:
            with pytest.raises(DomainError) as per_order:
                services.order_complete_after_window(order=refused)
            assert per_order.value.code == code
        assert _state(refused) == before
        # when the sweep runs
        done = services.orders_sweep_post_delivery_windows()
    # then it left that order exactly as it was, and told staff when it had claimed it
    assert _state(refused) == before
    alerts = SystemAlert.objects.filter(source="orders.sweep_post_delivery_windows")
    assert [alert.message.startswith(f"Order {refused.pk}:") for alert in alerts] == (
        [True] if alerted else []
    )
    # and completed the two others, releasing their money once
    assert done == 2
    for order in (first, last):
        order.refresh_from_db()
        assert order.status == S.COMPLETED
        assert _releases(order) == 1
        assert escrow_summary(escrow_reference=order.escrow_reference).held == 0
        event = OrderEvent.objects.get(order=order, action="complete_after_window")
        assert event.data == {"released": str(HELD)}


def _sweep_statements(orders: list[Order]) -> int:
    with _due(orders), CaptureQueriesContext(connection) as captured:
        assert services.orders_sweep_post_delivery_windows() == len(orders)
    return len(captured)


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_post_delivery_batch_costs_the_same_statements_for_2_orders_as_for_10():
    # given 2 due delivered orders, swept, then 10 more
    two = _sweep_statements(_closing(2))
    ten = _sweep_statements(_closing(10))
    # then the sweep ran the same statements for each batch (the claim, the escrows, the
    # ledger's rows and entries, the events, notifications and records: no per-order query)
    assert two == ten, (two, ten)
    assert Order.objects.filter(status=S.COMPLETED).count() == 12
    assert LedgerTransaction.objects.filter(kind="release").count() == 12
    assert ledger_verify().ok


# --- races, with real threads ---------------------------------------------------------------


def _in_thread(name: str, call: Callable[[], object], outcome: dict) -> threading.Thread:
    def run() -> None:
        try:
            outcome[name] = ("ok", call())
        except DomainError as refusal:  # a clean refusal a person reads (409)
            outcome[name] = ("refused", refusal)
        except BaseException as error:  # asserted below: never allowed
            outcome[name] = ("error", error)
        finally:
            connection.close()

    thread = threading.Thread(target=run, name=name)
    thread.start()
    return thread


def _pause(module, name: str, thread_name: str, there, go, *, before: bool = False) -> Callable:
    """Make `module.name` pause, in the thread called `thread_name` only, after it has done its
    work (or, `before`, just before it starts), inside its transaction."""
    real = getattr(module, name)

    def pause() -> None:
        if threading.current_thread().name == thread_name:
            there.set()
            assert go.wait(timeout=60)

    def paused(*args, **kwargs):
        if before:
            pause()
        result = real(*args, **kwargs)
        if not before:
            pause()
        return result

    return paused


def _waiting_on_a_lock(outcome: dict, name: str) -> bool:
    """Whether the backend of the thread `name` waits for a row lock (polled, no timing)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND pid <> pg_backend_pid() AND datname = current_database()"
        )
        return cursor.fetchone()[0] > 0 or name in outcome


def _until(condition: Callable[[], bool]) -> None:
    for _ in range(6000):
        if condition():
            return
        threading.Event().wait(0.01)
    raise AssertionError("the other thread never got there")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_buyer_accepting_while_the_sweep_posts_waits_and_is_refused_cleanly(monkeypatch):
    # given a delivered order whose claim window closed, and a sweep that has posted its release
    # and not yet committed
    (order,) = _closing(1)
    posted, go = threading.Event(), threading.Event()
    monkeypatch.setattr(
        sweeps,
        "escrows_release_many",
        _pause(sweeps, "escrows_release_many", "sweep", posted, go),
    )
    _buyer_just_before_the_close(monkeypatch, [order])
    outcome: dict = {}
    sweep = _in_thread("sweep", services.orders_sweep_post_delivery_windows, outcome)
    assert posted.wait(timeout=60)
    # when the buyer accepts the goods at that moment
    buyer = _in_thread(
        "buyer", lambda: services.order_accept_goods(order=order, actor=order.buyer), outcome
    )
    _until(lambda: _waiting_on_a_lock(outcome, "buyer"))
    go.set()
    for thread in (sweep, buyer):
        thread.join(timeout=60)
    # then the sweep completed it, and the buyer waited for it and was told it is completed
    assert outcome["sweep"] == ("ok", 1), outcome
    assert outcome["buyer"][0] == "refused", outcome
    order.refresh_from_db()
    assert order.status == S.COMPLETED
    assert _releases(order) == 1
    money = escrow_summary(escrow_reference=order.escrow_reference)
    assert (money.released, money.held) == (HELD, Decimal("0.00"))
    assert not SystemAlert.objects.exists()
    assert ledger_verify().ok


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_sweep_while_the_buyer_accepts_skips_the_order_and_releases_nothing(monkeypatch):
    # given two delivered orders whose claim windows closed, the buyer of the first accepting
    # the goods: its escrow and order locked, about to release
    accepted, other = _closing(2)
    posted, go = threading.Event(), threading.Event()
    monkeypatch.setattr(
        receipt,
        "order_release_all",
        _pause(receipt, "order_release_all", "buyer", posted, go, before=True),
    )
    _buyer_just_before_the_close(monkeypatch, [accepted, other])
    outcome: dict = {}
    buyer = _in_thread(
        "buyer",
        lambda: services.order_accept_goods(order=accepted, actor=accepted.buyer),
        outcome,
    )
    assert posted.wait(timeout=60)
    try:
        # when the sweep runs at that moment
        done = services.orders_sweep_post_delivery_windows()
    finally:
        go.set()
        buyer.join(timeout=60)
    # then it skipped the buyer's order without waiting and completed the other
    assert done == 1
    assert outcome["buyer"][0] == "ok", outcome
    # and the next run finds nothing left to do
    assert services.orders_sweep_post_delivery_windows() == 0
    for order, action in ((accepted, "accept_goods"), (other, "complete_after_window")):
        order.refresh_from_db()
        assert order.status == S.COMPLETED
        assert list(
            OrderEvent.objects.filter(
                order=order, action__in=["accept_goods", "complete_after_window"]
            ).values_list("action", flat=True)
        ) == [action]
        assert _releases(order) == 1
    assert ledger_verify().ok


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_second_sweep_while_the_first_posts_skips_its_orders_and_releases_nothing(
    monkeypatch,
):
    # given three delivered orders whose claim windows closed, and a sweep that has posted
    # their releases and not yet committed
    orders = _closing(3)
    posted, go = threading.Event(), threading.Event()
    monkeypatch.setattr(
        sweeps,
        "escrows_release_many",
        _pause(sweeps, "escrows_release_many", "first", posted, go),
    )
    outcome: dict = {}
    with _due(orders):
        first = _in_thread("first", services.orders_sweep_post_delivery_windows, outcome)
        assert posted.wait(timeout=60)
        try:
            # when a second sweep runs at that moment
            second = services.orders_sweep_post_delivery_windows()
        finally:
            go.set()
            first.join(timeout=60)
    # then the second found every order held, waited for nothing and moved nothing; the first
    # completed them all, each released once
    assert second == 0
    assert outcome["first"] == ("ok", 3), outcome
    for order in orders:
        order.refresh_from_db()
        assert order.status == S.COMPLETED
        assert _releases(order) == 1
        assert OrderEvent.objects.filter(order=order, action="complete_after_window").count() == 1
    assert not SystemAlert.objects.exists()
    assert ledger_verify().ok


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_batch_whose_posting_fails_goes_order_by_order_and_releases_each_once(monkeypatch):
    from django.db import IntegrityError

    from payments import ledger

    # given two due delivered orders, and a ledger that refuses the batch's posting once (as
    # the unique idempotency key would if someone had posted one of its releases meanwhile)
    orders = _closing(2)
    real = ledger.ledger_post_many
    calls = {"n": 0}

    def refuse_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise IntegrityError("duplicate key value violates unique constraint")
        return real(*args, **kwargs)

    monkeypatch.setattr(ledger, "ledger_post_many", refuse_once)
    # when the sweep runs
    with _due(orders):
        done = services.orders_sweep_post_delivery_windows()
    # then the batch rolled back whole and each order was completed by the per-order path,
    # its money released once
    assert done == 2 and calls["n"] == 1
    for order in orders:
        order.refresh_from_db()
        assert order.status == S.COMPLETED
        assert _releases(order) == 1
        assert OrderEvent.objects.filter(order=order, action="complete_after_window").count() == 1
    assert not SystemAlert.objects.exists()
    assert ledger_verify().ok
