"""Factories and helpers for payments tests: escrows are opened and paid through the services."""

import uuid
from decimal import Decimal

import factory

from payments import services
from payments.models import Escrow, Payment
from tests.factories import BuyerFactory, OrganisationFactory, SupplierStaffFactory


class EscrowFactory(factory.django.DjangoModelFactory):
    """An escrow opened the way orders opens one (escrow_open), with a buyer and a supplier user."""

    class Meta:
        model = Escrow

    reference = factory.Sequence(lambda n: f"order:{9000 + n}")
    currency = "USD"
    buyer_organisation = factory.SubFactory(OrganisationFactory, kind="buyer")
    supplier_organisation = factory.SubFactory(OrganisationFactory, kind="supplier", country="CN")
    description = factory.LazyAttribute(lambda o: f"Test order {o.reference}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        services.escrow_open(
            escrow_reference=kwargs["reference"],
            currency=kwargs["currency"],
            buyer_organisation=kwargs["buyer_organisation"],
            supplier_organisation=kwargs["supplier_organisation"],
            description=kwargs["description"],
        )
        return model_class.objects.get(reference=kwargs["reference"])


def buyer_of(escrow: Escrow):
    return BuyerFactory(organisation=escrow.buyer_organisation)


def supplier_staff_of(escrow: Escrow):
    return SupplierStaffFactory(organisation=escrow.supplier_organisation)


def payment_started(
    escrow: Escrow,
    amount: Decimal,
    *,
    method: str = "card",
    purpose: str = "initial",
    key: str | None = None,
) -> Payment:
    return services.payment_start(
        escrow_reference=escrow.reference,
        purpose=purpose,
        amount=amount,
        currency=escrow.currency,
        method=method,
        payer_organisation=escrow.buyer_organisation,
        idempotency_key=key or f"test-pay:{uuid.uuid4()}",
        return_url="/orders/1/",
    )


def pay_by_card(
    escrow: Escrow, amount: Decimal, *, purpose: str = "initial", card="4242424242424242"
):
    """Start a card payment and pay it through the sandbox (callers run on_commit callbacks)."""
    payment = payment_started(escrow, amount, purpose=purpose)
    services.payment_card_submit(payment=payment, card_number=card, actor=buyer_of_cached(escrow))
    return payment


_buyers: dict[int, object] = {}


def buyer_of_cached(escrow: Escrow):
    from accounts.models import User

    user = User.objects.filter(organisation=escrow.buyer_organisation).first()
    return user or buyer_of(escrow)


def escrow_cache_shift(escrow: Escrow, delta: Decimal) -> None:
    """Corrupt the escrow account's cached balance behind the ledger's back by `delta` (the
    database's guards are switched off for this one statement, as only a broken restore would):
    what a release must refuse to move."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "UPDATE payments_account SET balance = balance + %s WHERE escrow_id = %s AND kind = %s",
            [delta, escrow.pk, "escrow"],
        )
        cursor.execute("SET LOCAL session_replication_role = origin")
