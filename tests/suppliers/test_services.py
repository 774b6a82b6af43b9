"""Service rules beyond the order interface: actors, transitions, and nothing changed on refusal."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from suppliers import services
from suppliers.models import (
    Product,
    SupplierStatusChange,
    TradeAssuranceApplication,
    TradeAssuranceStatus,
    VerificationDocument,
    VerificationStatus,
)
from tests.factories import BuyerFactory, MediatorFactory, VettingFactory
from tests.suppliers.factories import (
    EligibleSupplierFactory,
    SupplierFactory,
    TradeAssuredSupplierFactory,
    VerificationDocumentFactory,
    supplier_staff_for,
)
from tests.test_uploads import PDF, PNG
from tradeassure.core import clock
from tradeassure.core.errors import (
    Conflict,
    InvalidTransition,
    NotAllowed,
    Unprocessable,
    ValidationFailed,
)

pytestmark = pytest.mark.django_db


def test_only_the_suppliers_own_staff_upload_documents():
    supplier = SupplierFactory()
    for outsider in (BuyerFactory(), supplier_staff_for(SupplierFactory()), VettingFactory()):
        with pytest.raises(NotAllowed):
            services.verification_document_upload(
                actor=outsider,
                supplier=supplier,
                kind="business_licence",
                file=SimpleUploadedFile("l.pdf", PDF),
            )
    assert VerificationDocument.objects.count() == 0
    supplier.refresh_from_db()
    assert supplier.verification_status == VerificationStatus.NOT_SUBMITTED


@pytest.mark.parametrize("actor_factory", [BuyerFactory, MediatorFactory])
def test_only_vetting_staff_decide(actor_factory):
    supplier = SupplierFactory(verification_status=VerificationStatus.PENDING)
    VerificationDocumentFactory(supplier=supplier)
    with pytest.raises(NotAllowed):
        services.supplier_verification_decide(
            actor=actor_factory(), supplier=supplier, approve=True, reason="ok"
        )
    supplier.refresh_from_db()
    assert supplier.verification_status == VerificationStatus.PENDING
    assert SupplierStatusChange.objects.count() == 0


def test_verification_needs_documents_and_a_reason():
    vetting = VettingFactory()
    supplier = SupplierFactory(verification_status=VerificationStatus.PENDING)
    with pytest.raises(Unprocessable):
        services.supplier_verification_decide(
            actor=vetting, supplier=supplier, approve=True, reason="ok"
        )
    VerificationDocumentFactory(supplier=supplier)
    with pytest.raises(ValidationFailed):
        services.supplier_verification_decide(
            actor=vetting, supplier=supplier, approve=True, reason="   "
        )
    supplier.refresh_from_db()
    assert supplier.verification_status == VerificationStatus.PENDING


def test_a_rejected_supplier_can_resubmit_by_uploading_again():
    supplier = SupplierFactory(verification_status=VerificationStatus.REJECTED)
    services.verification_document_upload(
        actor=supplier_staff_for(supplier),
        supplier=supplier,
        kind="tax_registration",
        file=SimpleUploadedFile("tax.pdf", PDF),
    )
    supplier.refresh_from_db()
    assert supplier.verification_status == VerificationStatus.PENDING


def test_an_application_is_decided_once():
    supplier = EligibleSupplierFactory()
    application = services.supplier_apply_for_trade_assurance(
        actor=supplier_staff_for(supplier), supplier=supplier
    )
    vetting = VettingFactory()
    services.supplier_application_decide(
        actor=vetting, application=application, approve=False, reason="Incomplete address."
    )
    with pytest.raises(InvalidTransition):
        services.supplier_application_decide(
            actor=vetting, application=application, approve=True, reason="Changed my mind."
        )
    supplier.refresh_from_db()
    application.refresh_from_db()
    assert (application.status, supplier.ta_status) == ("rejected", TradeAssuranceStatus.REJECTED)
    assert supplier.ta_limit_usd == Decimal("0")


def test_a_rejected_supplier_may_apply_again_but_not_twice_at_once():
    supplier = EligibleSupplierFactory(ta_status=TradeAssuranceStatus.REJECTED)
    staff = supplier_staff_for(supplier)
    services.supplier_apply_for_trade_assurance(actor=staff, supplier=supplier)
    with pytest.raises(Conflict):
        services.supplier_apply_for_trade_assurance(actor=staff, supplier=supplier)
    assert TradeAssuranceApplication.objects.filter(supplier=supplier).count() == 1


def test_approval_rechecks_the_rules():
    # given an application made while eligible, and a membership that lapsed since
    supplier = EligibleSupplierFactory()
    application = services.supplier_apply_for_trade_assurance(
        actor=supplier_staff_for(supplier), supplier=supplier
    )
    type(supplier).objects.filter(pk=supplier.pk).update(
        membership_expires_on=clock.now().date() - timedelta(days=1)
    )

    # when vetting approve, then it is refused and nothing changes
    with pytest.raises(Unprocessable):
        services.supplier_application_decide(
            actor=VettingFactory(), application=application, approve=True, reason="ok"
        )
    application.refresh_from_db()
    supplier.refresh_from_db()
    assert (application.status, supplier.ta_status) == ("pending", TradeAssuranceStatus.PENDING)


def test_suspend_and_reinstate_only_from_the_right_status():
    vetting = VettingFactory()
    supplier = EligibleSupplierFactory()  # not trade-assured
    with pytest.raises(InvalidTransition):
        services.supplier_suspend(actor=vetting, supplier=supplier, reason="x")
    with pytest.raises(InvalidTransition):
        services.supplier_reinstate(actor=vetting, supplier=supplier, reason="x")
    supplier.refresh_from_db()
    assert supplier.ta_status == TradeAssuranceStatus.NONE


def test_changing_country_after_verification_sends_it_back_to_review():
    supplier = TradeAssuredSupplierFactory(country="CN")
    services.supplier_profile_update(
        actor=supplier_staff_for(supplier),
        supplier=supplier,
        legal_name=supplier.legal_name,
        country="my",
        year_established=2001,
        declared_capacity=10,
        description="",
        categories=[],
    )
    supplier.refresh_from_db()
    assert (supplier.country, supplier.verification_status) == ("MY", VerificationStatus.PENDING)


def test_membership_changes_are_recorded_and_gold_needs_an_expiry():
    vetting = VettingFactory()
    supplier = SupplierFactory()
    with pytest.raises(ValidationFailed):
        services.supplier_membership_set(
            actor=vetting, supplier=supplier, membership="gold", expires_on=None, reason="paid"
        )
    expiry = clock.now().date() + timedelta(days=365)
    services.supplier_membership_set(
        actor=vetting, supplier=supplier, membership="gold", expires_on=expiry, reason="paid"
    )
    supplier.refresh_from_db()
    assert (supplier.membership, supplier.membership_expires_on) == ("gold", expiry)
    change = SupplierStatusChange.objects.get(field="membership")
    assert (change.from_value, change.to_value) == ("free:", f"gold:{expiry}")


def test_a_product_image_must_be_an_image_and_is_served_while_listed(client):
    supplier = SupplierFactory()
    staff = supplier_staff_for(supplier)
    common = {
        "actor": staff,
        "supplier": supplier,
        "name": "Lamp",
        "unit_price": Decimal("9.99"),
        "currency": "USD",
    }
    with pytest.raises(ValidationFailed):
        services.product_create(**common, image=SimpleUploadedFile("lamp.pdf", PDF))
    assert Product.objects.count() == 0

    product = services.product_create(**common, image=SimpleUploadedFile("lamp.png", PNG))
    url = reverse("suppliers:product_image", args=[product.pk])
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    b"".join(response.streaming_content)

    services.product_set_active(actor=staff, product=product, is_active=False)
    assert client.get(url).status_code == 404
    client.force_login(staff)
    response = client.get(url)
    assert response.status_code == 200
    b"".join(response.streaming_content)


def test_a_jpy_price_with_decimals_is_refused():
    supplier = SupplierFactory()
    with pytest.raises(ValidationFailed) as refused:
        services.product_create(
            actor=supplier_staff_for(supplier),
            supplier=supplier,
            name="Tea set",
            unit_price=Decimal("1500.50"),
            currency="JPY",
        )
    assert "unit_price" in refused.value.fields
    assert Product.objects.count() == 0


def test_a_record_cannot_move_to_another_supplier():
    first, second = TradeAssuredSupplierFactory(), TradeAssuredSupplierFactory()
    facts = {
        "order_reference": "order:9",
        "amount": Decimal("10.00"),
        "currency": "USD",
        "status": "open",
        "placed_at": clock.now(),
    }
    services.supplier_order_record_sync(supplier=first, **facts)
    with pytest.raises(Conflict):
        services.supplier_order_record_sync(supplier=second, **facts)
    from suppliers.models import SupplierOrderRecord

    assert SupplierOrderRecord.objects.get(order_reference="order:9").supplier == first


def test_vetting_staff_are_told_about_new_work():
    from tradeassure.platform.models import Notification

    vetting = VettingFactory()
    supplier = EligibleSupplierFactory(verification_status=VerificationStatus.NOT_SUBMITTED)
    staff = supplier_staff_for(supplier)
    services.verification_document_upload(
        actor=staff,
        supplier=supplier,
        kind="business_licence",
        file=SimpleUploadedFile("l.pdf", PDF),
    )
    assert Notification.objects.filter(recipient=vetting, title__startswith="Verification").exists()


def test_history_reads_in_words():
    supplier = TradeAssuredSupplierFactory(ta_status=TradeAssuranceStatus.SUSPENDED)
    services.supplier_reinstate(actor=VettingFactory(), supplier=supplier, reason="ok")
    change = SupplierStatusChange.objects.get(field="trade_assurance")
    assert (change.from_display, change.to_display) == ("Suspended", "Trade Assurance")
