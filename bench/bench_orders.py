"""Orders benchmarks: what a deadline sweep and the order list cost over their floor."""

from datetime import timedelta

from bench.micro import Benchmark, get_many

ORDERS = 50


def _due_orders() -> dict:
    """ORDERS orders awaiting confirmation whose confirmation deadline has passed."""
    from decimal import Decimal

    from orders import services
    from orders.models import Order
    from tests.factories import BuyerFactory
    from tests.orders.factories import (
        ContractTermsFactory,
        LineItemTermsFactory,
        trade_assured_supplier,
    )
    from tradeassure.core import clock

    # Small orders (USD 150 each), so all of them fit the supplier's floor limit.
    supplier = trade_assured_supplier()
    # .create() is what calling a factory does; the factories are not generic, so the result
    # is typed Any instead of the factory class.
    buyer = BuyerFactory.create()
    terms = ContractTermsFactory.create(
        items=[LineItemTermsFactory(quantity=Decimal(1), unit_price=Decimal(100))],
        shipping_fee=Decimal(50),
        initial_payment_amount=Decimal(50),
    )
    ids = [
        services.order_place(buyer=buyer, supplier=supplier, terms=terms).pk for _ in range(ORDERS)
    ]
    Order.objects.filter(pk__in=ids).update(confirmation_due_at=clock.now() - timedelta(seconds=1))
    return {"ids": ids}


def _sweep(context: dict) -> None:
    from orders.services import orders_sweep_confirmation_timeouts

    done = orders_sweep_confirmation_timeouts()
    assert done == ORDERS, done


def _bare_updates(context: dict) -> None:
    """The floor: one committed single-row status update per order, nothing else."""
    from django.db import transaction

    from orders.models import Order

    for pk in context["ids"]:
        with transaction.atomic():
            Order.objects.filter(pk=pk).update(status="cancelled", confirmation_due_at=None)


def _buyer_with_orders() -> dict:
    from django.test import Client

    from orders.models import Order

    context = _due_orders()
    buyer = Order.objects.get(pk=context["ids"][0]).buyer
    client = Client()
    client.force_login(buyer)
    return {"client": client}


BENCHMARKS = [
    Benchmark(
        name=f"confirmation-timeout sweep of {ORDERS} orders vs {ORDERS} bare updates",
        setup=_due_orders,
        baseline=_bare_updates,
        subject=_sweep,
        repeat=3,
        notes="per order: lock (SKIP LOCKED), re-check, event, domain event, notifications, "
        "supplier record; the harness runs Celery eagerly, so the outbox dispatch and the "
        "metrics recompute a worker would do later are included (about two thirds)",
    ),
    Benchmark(
        name="My orders (25 per page) vs /healthz, 20 requests",
        setup=_buyer_with_orders,
        baseline=get_many("/healthz"),
        subject=get_many("/orders/"),
        repeat=3,
        notes="a constant number of queries whatever the page holds",
    ),
]
