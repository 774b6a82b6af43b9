"""factory-boy factories for suppliers."""

from datetime import timedelta
from decimal import Decimal

import factory

from accounts.models import Organisation
from suppliers.models import (
    Category,
    Product,
    Supplier,
    SupplierMetrics,
    SupplierOrderRecord,
    TradeAssuranceStatus,
    VerificationDocument,
    VerificationStatus,
)
from tests.factories import OrganisationFactory, SupplierStaffFactory
from tradeassure.core import clock


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Category {n}")
    slug = factory.LazyAttribute(lambda o: o.name.lower().replace(" ", "-"))


class SupplierFactory(factory.django.DjangoModelFactory):
    """A supplier that is NOT eligible by default (free tier, unverified)."""

    class Meta:
        model = Supplier
        skip_postgeneration_save = True

    organisation = factory.SubFactory(
        OrganisationFactory, kind=Organisation.Kind.SUPPLIER, country="CN"
    )
    legal_name = factory.Sequence(lambda n: f"Supplier Co {n}")
    country = "CN"
    declared_capacity = 1000

    @factory.post_generation
    def with_metrics(obj, create, extracted, **kwargs):
        if create:
            SupplierMetrics.objects.get_or_create(
                supplier=obj, defaults={"computed_at": clock.now(), "window_days": 180}
            )


class EligibleSupplierFactory(SupplierFactory):
    """Gold, in CN, verified: may apply for Trade Assurance."""

    membership = Supplier.Membership.GOLD
    membership_expires_on = factory.LazyFunction(lambda: clock.now().date() + timedelta(days=365))
    verification_status = VerificationStatus.APPROVED


class TradeAssuredSupplierFactory(EligibleSupplierFactory):
    """Approved for Trade Assurance with the floor limit."""

    ta_status = TradeAssuranceStatus.APPROVED
    ta_limit_usd = Decimal("10000.00")
    ta_status_changed_at = factory.LazyFunction(clock.now)


def supplier_staff_for(supplier: Supplier, **kwargs):
    return SupplierStaffFactory(organisation=supplier.organisation, **kwargs)


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    supplier = factory.SubFactory(SupplierFactory)
    name = factory.Sequence(lambda n: f"Widget {n}")
    unit_price = Decimal("2.50")
    currency = "USD"
    minimum_order_quantity = 100
    category = factory.SubFactory(CategoryFactory)


class VerificationDocumentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VerificationDocument

    supplier = factory.SubFactory(SupplierFactory)
    kind = VerificationDocument.Kind.BUSINESS_LICENCE
    file_name = factory.Sequence(lambda n: f"verification/doc{n}.pdf")
    original_name = "licence.pdf"
    content_type = "application/pdf"
    size = 100
    uploaded_by = factory.LazyAttribute(lambda o: supplier_staff_for(o.supplier))
    uploaded_at = factory.LazyFunction(clock.now)


class OrderRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SupplierOrderRecord

    supplier = factory.SubFactory(SupplierFactory)
    order_reference = factory.Sequence(lambda n: f"order:{n + 100000}")
    amount = Decimal("1000.00")
    currency = "USD"
    amount_usd = factory.LazyAttribute(lambda o: o.amount)
    status = SupplierOrderRecord.Status.COMPLETED
    placed_at = factory.LazyFunction(lambda: clock.now() - timedelta(days=30))
    confirmed_at = factory.LazyAttribute(lambda o: o.placed_at + timedelta(hours=10))
    shipment_deadline = factory.LazyAttribute(lambda o: o.placed_at + timedelta(days=20))
    shipped_at = factory.LazyAttribute(lambda o: o.placed_at + timedelta(days=15))
    completed_at = factory.LazyAttribute(lambda o: o.placed_at + timedelta(days=25))
    updated_at = factory.LazyFunction(clock.now)
