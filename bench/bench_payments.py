"""Payments benchmarks: what a release and the supplier's Money page cost over their floor."""

from decimal import Decimal

from bench.micro import Benchmark, get_many

ESCROWS = 50


def _funded_escrows() -> dict:
    """ESCROWS escrows holding USD 1,000.00 each, captured through the sandbox webhook path."""
    import uuid

    from payments import services
    from payments.models import Escrow
    from payments.providers.sandbox import event_body
    from payments.tasks import sandbox_deliver_event
    from tests.factories import OrganisationFactory

    buyer, supplier = OrganisationFactory(), OrganisationFactory(kind="supplier")
    references = []
    for _ in range(ESCROWS):
        reference = f"bench:{uuid.uuid4().hex[:10]}"
        services.escrow_open(
            escrow_reference=reference,
            currency="USD",
            buyer_organisation=buyer,
            supplier_organisation=supplier,
            description="bench",
        )
        payment = services.payment_start(
            escrow_reference=reference,
            purpose="initial",
            amount=Decimal("1000.00"),
            currency="USD",
            method="card",
            payer_organisation=buyer,
            idempotency_key=f"bench-pay:{reference}",
        )
        sandbox_deliver_event(
            event_body(
                "payment.captured",
                payment.provider_reference,
                amount=payment.amount,
                currency="USD",
                charge_id=f"ch_{reference}",
            )
        )
        references.append(reference)
    assert Escrow.objects.filter(reference__in=references).count() == ESCROWS
    return {"references": references, "supplier": supplier}


def _release_all(context: dict) -> None:
    from payments.services import escrow_release

    for reference in context["references"]:
        escrow_release(
            escrow_reference=reference, amount=Decimal("400.00"), idempotency_key=f"{reference}:rel"
        )


def _bare_updates(context: dict) -> None:
    """The floor: one committed single-row update per escrow, nothing else."""
    from django.db import transaction

    from payments.models import Escrow

    for reference in context["references"]:
        with transaction.atomic():
            Escrow.objects.filter(reference=reference).update(description="bench")


def _supplier_client() -> dict:
    from django.test import Client

    from tests.factories import SupplierStaffFactory

    context = _funded_escrows()
    _release_all(context)
    client = Client()
    client.force_login(SupplierStaffFactory.create(organisation=context["supplier"]))
    return {"client": client}


BENCHMARKS = [
    Benchmark(
        name=f"{ESCROWS} escrow releases vs {ESCROWS} bare updates",
        setup=_funded_escrows,
        baseline=_bare_updates,
        subject=_release_all,
        repeat=3,
        notes="per release: escrow lock, ordered account locks, fee, one balanced ledger "
        "transaction, cached balances, domain event (Celery eager: outbox dispatch included)",
    ),
    Benchmark(
        name=f"supplier Money page ({ESCROWS} orders) vs /healthz, 20 requests",
        setup=_supplier_client,
        baseline=get_many("/healthz"),
        subject=get_many("/payments/money/"),
        repeat=3,
        notes="constant queries: balances, one aggregate over the page's escrows, payouts",
    ),
]
