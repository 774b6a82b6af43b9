"""The browser side: directory, profile, dashboard, documents and the vetting admin."""

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from suppliers.models import (
    Product,
    Supplier,
    SupplierStatusChange,
    TradeAssuranceApplication,
    TradeAssuranceStatus,
    VerificationDocument,
    VerificationStatus,
)
from tests.factories import (
    BuyerFactory,
    MediatorFactory,
    OrganisationFactory,
    SupplierStaffFactory,
    VettingFactory,
)
from tests.suppliers.factories import (
    CategoryFactory,
    EligibleSupplierFactory,
    OrderRecordFactory,
    ProductFactory,
    SupplierFactory,
    TradeAssuredSupplierFactory,
    VerificationDocumentFactory,
    supplier_staff_for,
)
from tests.test_uploads import PDF, SVG

pytestmark = pytest.mark.django_db


def _queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


def _make_suppliers(count: int) -> None:
    category = CategoryFactory(name="Electronics", slug="electronics")
    for index in range(count):
        supplier = (TradeAssuredSupplierFactory if index % 2 else SupplierFactory)()
        supplier.categories.add(category, CategoryFactory())
        ProductFactory.create_batch(2, supplier=supplier, category=category)


# --- Directory and profile -----------------------------------------------------------------------


def test_the_directory_runs_the_same_queries_for_2_and_12_suppliers(client):
    plain = reverse("suppliers:directory")
    filtered = plain + "?q=Widget&category=electronics&trade_assurance=yes&country=CN"

    # given 2 suppliers, each with categories, products and metrics
    _make_suppliers(2)
    small = (_queries_for(client, plain), _queries_for(client, filtered))

    # when there are 12, then neither the plain nor the filtered directory runs more queries
    _make_suppliers(10)
    assert (_queries_for(client, plain), _queries_for(client, filtered)) == small


def test_the_profile_runs_the_same_queries_for_2_and_12_products(client):
    supplier = TradeAssuredSupplierFactory()
    ProductFactory.create_batch(2, supplier=supplier)
    OrderRecordFactory.create_batch(2, supplier=supplier, rating=4)
    url = reverse("suppliers:profile", args=[supplier.pk])
    small = _queries_for(client, url)

    ProductFactory.create_batch(10, supplier=supplier)
    OrderRecordFactory.create_batch(10, supplier=supplier, rating=5)
    assert _queries_for(client, url) == small


def test_directory_search_and_filters(client):
    # given a trade-assured CN supplier selling "Solar panel", and a US free-tier supplier
    solar = CategoryFactory(name="Energy", slug="energy")
    cn = TradeAssuredSupplierFactory(legal_name="Sunrise Power Co")
    cn.categories.add(solar)
    ProductFactory(supplier=cn, name="Solar panel 400W", category=solar)
    us = SupplierFactory(legal_name="Yankee Tools", country="US")
    ProductFactory(supplier=us, name="Hammer")
    url = reverse("suppliers:directory")

    def names(query: str) -> set[str]:
        page = client.get(url + query).context["page"]
        return {supplier.legal_name for supplier in page}

    # then search finds by company and by product name, and each filter narrows the list
    assert names("?q=solar") == {"Sunrise Power Co"}
    assert names("?q=yankee") == {"Yankee Tools"}
    assert names("?country=us") == {"Yankee Tools"}
    assert names("?category=energy") == {"Sunrise Power Co"}
    assert names("?trade_assurance=yes") == {"Sunrise Power Co"}
    assert names("?trade_assurance=no") == {"Yankee Tools"}
    # and nonsense input is ignored, not a 500
    assert client.get(url + "?country=%00%ff&category=nope&page=-3").status_code == 200


def test_profile_shows_badge_limit_products_and_ratings(client):
    supplier = TradeAssuredSupplierFactory(legal_name="Brightway")
    ProductFactory(supplier=supplier, name="USB-C charger")
    ProductFactory(supplier=supplier, name="Hidden thing", is_active=False)
    response = client.get(reverse("suppliers:profile", args=[supplier.pk]))
    body = response.content.decode()
    assert "Trade Assurance" in body and "USD 10,000.00" in body
    assert "USB-C charger" in body and "Hidden thing" not in body
    # and a buyer can start a protected order from it (the orders app's page)
    assert f"{reverse('orders:create')}?supplier={supplier.pk}" in body
    assert client.get(reverse("suppliers:profile", args=[999999])).status_code == 404


def test_an_unlisted_product_page_is_404(client):
    product = ProductFactory(is_active=False)
    assert client.get(reverse("suppliers:product_detail", args=[product.pk])).status_code == 404
    listed = ProductFactory()
    assert client.get(reverse("suppliers:product_detail", args=[listed.pk])).status_code == 200


# --- Dashboard: profile, products ----------------------------------------------------------------


def test_a_new_supplier_completes_the_company_profile_first(client):
    # given a supplier user who signed up (organisation, no Supplier row)
    user = SupplierStaffFactory()
    client.force_login(user)

    # when they open the dashboard, then they get the profile form
    response = client.get(reverse("suppliers:dashboard"))
    assert "Complete your company profile" in response.content.decode()

    # when they submit bad input, then nothing is created
    response = client.post(reverse("suppliers:dashboard"), {"legal_name": "", "country": "China"})
    assert response.status_code == 200
    assert Supplier.objects.count() == 0

    # when they submit the profile, then the Supplier row exists and the dashboard shows
    response = client.post(
        reverse("suppliers:dashboard"),
        {"legal_name": "Acme Mfg", "country": "cn", "declared_capacity": "5000"},
    )
    assert response.status_code == 302
    supplier = Supplier.objects.get(organisation=user.organisation)
    assert (supplier.legal_name, supplier.country) == ("Acme Mfg", "CN")
    assert (
        "Apply for Trade Assurance" in client.get(reverse("suppliers:dashboard")).content.decode()
    )


def test_the_dashboard_is_for_supplier_staff_only(client):
    client.force_login(BuyerFactory())
    assert client.get(reverse("suppliers:dashboard")).status_code == 403
    client.logout()
    assert client.get(reverse("suppliers:dashboard")).status_code == 302  # to the login page


def test_supplier_staff_manage_their_products(client):
    supplier = SupplierFactory()
    client.force_login(supplier_staff_for(supplier))

    # when a product is added with a bad price, then nothing is created
    data = {
        "name": "Gear",
        "unit_price": "-1",
        "currency": "USD",
        "unit": "pcs",
        "minimum_order_quantity": "10",
        "lead_time_days": "20",
    }
    assert client.post(reverse("suppliers:product_new"), data).status_code == 200
    assert Product.objects.count() == 0

    # when it is added properly, then it is listed; then edited; then unlisted
    data["unit_price"] = "3.25"
    assert client.post(reverse("suppliers:product_new"), data).status_code == 302
    product = Product.objects.get(supplier=supplier)
    data["unit_price"] = "3.50"
    client.post(reverse("suppliers:product_edit", args=[product.pk]), data)
    client.post(reverse("suppliers:product_toggle", args=[product.pk]), {"active": "0"})
    product.refresh_from_db()
    assert (product.unit_price, product.is_active) == (Decimal("3.50"), False)


def test_a_supplier_cannot_touch_another_suppliers_product(client):
    product = ProductFactory(unit_price=Decimal("2.50"))
    client.force_login(supplier_staff_for(SupplierFactory()))
    data = {
        "name": "Hijacked",
        "unit_price": "0.01",
        "currency": "USD",
        "unit": "pcs",
        "minimum_order_quantity": "1",
        "lead_time_days": "1",
    }
    assert (
        client.post(reverse("suppliers:product_edit", args=[product.pk]), data).status_code == 404
    )
    assert (
        client.post(
            reverse("suppliers:product_toggle", args=[product.pk]), {"active": "0"}
        ).status_code
        == 404
    )
    product.refresh_from_db()
    assert (product.name, product.unit_price, product.is_active) != (
        "Hijacked",
        Decimal("0.01"),
        False,
    )
    assert product.is_active and product.unit_price == Decimal("2.50")


# --- Verification documents ----------------------------------------------------------------------


def test_uploading_a_document_puts_the_supplier_in_review(client):
    supplier = SupplierFactory()
    client.force_login(supplier_staff_for(supplier))

    # when an SVG is uploaded, then it is refused and nothing changes
    client.post(
        reverse("suppliers:document_upload"),
        {"kind": "business_licence", "file": SimpleUploadedFile("licence.svg", SVG)},
    )
    supplier.refresh_from_db()
    assert VerificationDocument.objects.count() == 0
    assert supplier.verification_status == VerificationStatus.NOT_SUBMITTED

    # when a PDF is uploaded, then it is stored and verification is pending
    client.post(
        reverse("suppliers:document_upload"),
        {"kind": "business_licence", "file": SimpleUploadedFile("licence.pdf", PDF)},
    )
    supplier.refresh_from_db()
    document = VerificationDocument.objects.get(supplier=supplier)
    assert document.original_name == "licence.pdf"
    assert supplier.verification_status == VerificationStatus.PENDING
    assert SupplierStatusChange.objects.filter(supplier=supplier, field="verification").count() == 1


def test_documents_are_served_only_to_their_supplier_and_vetting_staff(client):
    # given a document uploaded through the service
    supplier = SupplierFactory()
    owner = supplier_staff_for(supplier)
    client.force_login(owner)
    client.post(
        reverse("suppliers:document_upload"),
        {"kind": "business_licence", "file": SimpleUploadedFile("licence.pdf", PDF)},
    )
    url = reverse("suppliers:document_download", args=[VerificationDocument.objects.get().pk])

    # then its supplier's staff and vetting staff get it, as an attachment
    response = client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF
    assert response["Content-Disposition"].startswith("attachment")
    client.force_login(VettingFactory())
    assert client.get(url).status_code == 200

    # and everyone else gets 404
    outsiders = [
        supplier_staff_for(SupplierFactory()),
        SupplierStaffFactory(organisation=OrganisationFactory(kind="supplier")),
        BuyerFactory(),
        MediatorFactory(),
    ]
    for outsider in outsiders:
        client.force_login(outsider)
        assert client.get(url).status_code == 404
    client.logout()
    assert client.get(url).status_code == 404


# --- Apply from the dashboard, decide in the admin ------------------------------------------------


def test_apply_from_the_dashboard_and_approve_in_the_admin(client):
    # given an eligible supplier whose dashboard shows every rule passing
    supplier = EligibleSupplierFactory()
    staff = supplier_staff_for(supplier)
    client.force_login(staff)
    body = client.get(reverse("suppliers:dashboard")).content.decode()
    assert body.count("pass</span>") == 4

    # when staff apply from the dashboard
    client.post(reverse("suppliers:apply"))

    # then an application waits, with the rules as they were
    application = TradeAssuranceApplication.objects.get(supplier=supplier)
    assert application.status == "pending"
    assert all(check["passed"] for check in application.rule_checks)
    supplier.refresh_from_db()
    assert supplier.ta_status == TradeAssuranceStatus.PENDING

    # when a vetting user picks the approve action in the changelist
    vetting = VettingFactory()
    client.force_login(vetting)
    changelist = reverse("admin:suppliers_tradeassuranceapplication_changelist")
    assert supplier.legal_name in client.get(changelist).content.decode()
    action = {"action": "approve_applications", "_selected_action": [application.pk]}
    response = client.post(changelist, action)

    # then the intermediate page asks for a reason; without one nothing changes
    assert response.status_code == 200 and "reason" in response.content.decode()
    response = client.post(changelist, {**action, "apply": "1", "reason": ""})
    assert response.status_code == 200
    application.refresh_from_db()
    assert application.status == "pending"

    # when the reason is given, then Trade Assurance and the floor limit are granted and recorded
    response = client.post(changelist, {**action, "apply": "1", "reason": "Documents check out."})
    assert response.status_code == 302
    application.refresh_from_db()
    supplier.refresh_from_db()
    assert (application.status, application.decided_by) == ("approved", vetting)
    assert supplier.ta_status == TradeAssuranceStatus.APPROVED
    assert supplier.ta_limit_usd == Decimal("10000.00")
    changes = SupplierStatusChange.objects.filter(supplier=supplier, actor=vetting)
    assert {(c.field, c.to_value) for c in changes} == {
        ("trade_assurance", "approved"),
        ("limit", "10000.00"),
    }
    # and the supplier sees it on the dashboard
    client.force_login(staff)
    body = client.get(reverse("suppliers:dashboard")).content.decode()
    assert "Documents check out." in body and "USD 10,000.00" in body


def test_an_ineligible_supplier_cannot_apply_and_nothing_changes(client):
    supplier = EligibleSupplierFactory(country="US")
    client.force_login(supplier_staff_for(supplier))
    body = client.get(reverse("suppliers:dashboard")).content.decode()
    assert "fail</span> Country" in body

    response = client.post(reverse("suppliers:apply"), follow=True)

    assert "US is not in the allowed list" in response.content.decode()
    assert TradeAssuranceApplication.objects.count() == 0
    supplier.refresh_from_db()
    assert supplier.ta_status == TradeAssuranceStatus.NONE


def test_a_buyer_cannot_apply_or_decide(client):
    supplier = EligibleSupplierFactory()
    client.force_login(BuyerFactory())
    assert client.post(reverse("suppliers:apply")).status_code == 403
    changelist = reverse("admin:suppliers_tradeassuranceapplication_changelist")
    assert client.get(changelist).status_code == 302  # to the admin login
    supplier.refresh_from_db()
    assert supplier.ta_status == TradeAssuranceStatus.NONE


def test_vetting_approves_a_verification_from_the_queue(client):
    supplier = SupplierFactory(verification_status=VerificationStatus.PENDING)
    VerificationDocumentFactory(supplier=supplier)
    SupplierFactory(legal_name="Not in the queue")
    vetting = VettingFactory()
    client.force_login(vetting)
    queue = reverse("admin:suppliers_pendingverification_changelist")

    body = client.get(queue).content.decode()
    assert supplier.legal_name in body and "Not in the queue" not in body

    response = client.post(
        queue,
        {
            "action": "approve_verification",
            "_selected_action": [supplier.pk],
            "apply": "1",
            "reason": "Licence matches the registry.",
            "verified_capacity": "8000",
        },
    )
    assert response.status_code == 302
    supplier.refresh_from_db()
    assert supplier.verification_status == VerificationStatus.APPROVED
    assert supplier.verified_capacity == 8000
    assert (
        SupplierStatusChange.objects.get(supplier=supplier, field="verification").actor == vetting
    )


def test_vetting_reinstates_a_suspended_supplier_in_the_admin(client):
    supplier = TradeAssuredSupplierFactory(ta_status=TradeAssuranceStatus.SUSPENDED)
    vetting = VettingFactory()
    client.force_login(vetting)
    response = client.post(
        reverse("admin:suppliers_supplier_changelist"),
        {
            "action": "reinstate_trade_assurance",
            "_selected_action": [supplier.pk],
            "apply": "1",
            "reason": "Improvement plan agreed.",
        },
    )
    assert response.status_code == 302
    supplier.refresh_from_db()
    assert supplier.ta_status == TradeAssuranceStatus.APPROVED
    assert supplier.suspension_grace_until is not None
    change = SupplierStatusChange.objects.get(supplier=supplier, field="trade_assurance")
    assert (change.from_value, change.to_value, change.actor, change.reason) == (
        "suspended",
        "approved",
        vetting,
        "Improvement plan agreed.",
    )


def test_mediators_can_read_but_not_decide(client):
    supplier = TradeAssuredSupplierFactory()
    client.force_login(MediatorFactory())
    changelist = reverse("admin:suppliers_supplier_changelist")
    assert client.get(changelist).status_code == 200
    client.post(
        changelist,
        {
            "action": "suspend_trade_assurance",
            "_selected_action": [supplier.pk],
            "apply": "1",
            "reason": "no",
        },
    )
    supplier.refresh_from_db()
    assert supplier.ta_status == TradeAssuranceStatus.APPROVED


def test_a_supplier_removes_a_wrong_document_but_not_once_approved(
    client, settings, django_capture_on_commit_callbacks
):
    from pathlib import Path

    supplier = SupplierFactory()
    client.force_login(supplier_staff_for(supplier))
    client.post(
        reverse("suppliers:document_upload"),
        {"kind": "other", "file": SimpleUploadedFile("wrong.pdf", PDF)},
    )
    document = VerificationDocument.objects.get()
    stored = Path(settings.PRIVATE_MEDIA_ROOT) / document.file_name

    # another supplier cannot remove it
    client.force_login(supplier_staff_for(SupplierFactory()))
    assert client.post(reverse("suppliers:document_delete", args=[document.pk])).status_code == 404
    assert VerificationDocument.objects.filter(pk=document.pk).exists()

    # its own supplier can, while verification is not approved: the file goes too
    client.force_login(supplier_staff_for(supplier))
    assert stored.exists()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("suppliers:document_delete", args=[document.pk]))
    assert not VerificationDocument.objects.filter(pk=document.pk).exists()
    assert not stored.exists()
    supplier.refresh_from_db()
    assert supplier.verification_status == VerificationStatus.NOT_SUBMITTED

    # once approved, documents stay
    approved = SupplierFactory(verification_status=VerificationStatus.APPROVED)
    kept = VerificationDocumentFactory(supplier=approved)
    client.force_login(supplier_staff_for(approved))
    client.post(reverse("suppliers:document_delete", args=[kept.pk]))
    assert VerificationDocument.objects.filter(pk=kept.pk).exists()
