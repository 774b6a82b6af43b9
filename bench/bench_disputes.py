"""Disputes benchmarks: what the escalation sweep and the dispute page cost over their floor."""

from datetime import timedelta

from bench.micro import Benchmark, get_many

DISPUTES = 50


def _due_disputes() -> dict:
    """DISPUTES disputes awaiting the supplier whose 3-day answer window has passed.

    The rows are written directly on placed orders: the sweep reads and changes only disputes,
    and building fifty paid, shipped orders through every service would dwarf what is measured.
    """
    from decimal import Decimal

    from disputes.models import Dispute
    from orders import services
    from tests.factories import BuyerFactory
    from tests.orders.factories import (
        ContractTermsFactory,
        LineItemTermsFactory,
        trade_assured_supplier,
    )
    from tradeassure.core import clock

    supplier = trade_assured_supplier()
    # .create() is what calling a factory does; the factories are not generic, so the result
    # is typed Any instead of the factory class.
    buyer = BuyerFactory.create()
    terms = ContractTermsFactory.create(
        items=[LineItemTermsFactory(quantity=Decimal(1), unit_price=Decimal(100))],
        shipping_fee=Decimal(50),
        initial_payment_amount=Decimal(50),
    )
    now = clock.now()
    ids = []
    for _ in range(DISPUTES):
        order = services.order_place(buyer=buyer, supplier=supplier, terms=terms)
        ids.append(
            Dispute.objects.create(
                order=order,
                type="quality",
                description="bench",
                requested_remedy="full_refund",
                currency="USD",
                opened_by=buyer,
                opened_at=now - timedelta(days=3, minutes=1),
                order_status_at_opening="delivered",
                supplier_response_due_at=now - timedelta(minutes=1),
                buyer_may_escalate_at=now - timedelta(minutes=1),
                escalation_due_at=now + timedelta(days=4),
            ).pk
        )
    return {"ids": ids, "buyer": buyer}


def _sweep(context: dict) -> None:
    from disputes.services import disputes_sweep_escalations

    done = disputes_sweep_escalations()
    assert done == DISPUTES, done


def _bare_updates(context: dict) -> None:
    """The floor: one committed single-row status update per dispute, nothing else."""
    from django.db import transaction

    from disputes.models import Dispute

    for pk in context["ids"]:
        with transaction.atomic():
            Dispute.objects.filter(pk=pk).update(status="escalated", supplier_response_due_at=None)


def _buyer_on_a_dispute() -> dict:
    from django.test import Client

    context = _due_disputes()
    client = Client()
    client.force_login(context["buyer"])
    return {"client": client, "path": f"/disputes/{context['ids'][0]}/"}


BENCHMARKS = [
    Benchmark(
        name=f"escalation sweep of {DISPUTES} disputes vs {DISPUTES} bare updates",
        setup=_due_disputes,
        baseline=_bare_updates,
        subject=_sweep,
        repeat=3,
        notes="per dispute: lock, re-check, event row, domain event, notifications of the "
        "mediators and both parties (Celery eager: the outbox dispatch is included)",
    ),
    Benchmark(
        name="dispute page vs /healthz, 20 requests",
        setup=_buyer_on_a_dispute,
        baseline=get_many("/healthz"),
        subject=get_many(None),
        repeat=3,
        notes="a constant number of queries whatever the dispute holds",
    ),
    Benchmark(
        name="dispute list vs /healthz, 20 requests",
        setup=_buyer_on_a_dispute,
        baseline=get_many("/healthz"),
        subject=get_many("/disputes/"),
        repeat=3,
    ),
]
