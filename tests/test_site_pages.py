"""The defects a new user hit on the public site, the navigation and the staff landing pages,
checked through Django's test client (HTML assertions)."""

import itertools
import re
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from django.urls import reverse

from suppliers.models import TradeAssuranceApplication
from tests.factories import BuyerFactory, MediatorFactory, SupplierStaffFactory, VettingFactory
from tests.orders.test_pages import _form_data
from tests.suppliers.factories import (
    EligibleSupplierFactory,
    OrderRecordFactory,
    ProductFactory,
    TradeAssuredSupplierFactory,
    VerificationDocumentFactory,
    supplier_staff_for,
)
from tradeassure.core import clock

pytestmark = pytest.mark.django_db


def _ids(body: str) -> Counter:
    return Counter(re.findall(r'\sid="([^"]+)"', body))


# --- the public site -------------------------------------------------------------------------
def test_logged_out_home_links_to_the_directory_and_start_selling_preselects_supplier(client):
    body = client.get("/").content.decode()
    assert f'href="{reverse("suppliers:directory")}"' in body
    assert f'href="{reverse("sign_up")}?role=supplier_staff"' in body
    # and the sign-up form opened from "Start selling" has the supplier choice checked
    form = client.get(reverse("sign_up") + "?role=supplier_staff").content.decode()
    checked = re.search(r'<input[^>]*value="(\w+)"[^>]*checked', form)
    assert checked and checked.group(1) == "supplier_staff"
    # and a plain sign-up still defaults to buyer
    plain = client.get(reverse("sign_up")).content.decode()
    assert re.search(r'<input[^>]*value="(\w+)"[^>]*checked', plain).group(1) == "buyer"


@pytest.mark.parametrize("path", ["/", "/suppliers/", "/accounts/login/", "/accounts/signup/"])
def test_every_page_has_a_skip_link_a_favicon_a_menu_toggle_and_unique_ids(client, path):
    response = client.get(path)
    assert response.status_code == 200, path
    body = response.content.decode()
    assert '<a class="skip-link" href="#main">' in body
    assert '<main class="container" id="main"' in body
    assert 'rel="icon"' in body and "favicon.svg" in body
    assert 'class="nav-toggle' in body and 'aria-controls="site-nav"' in body
    assert "<script>" not in body and " style=" not in body  # CSP: no inline script or style
    duplicates = [name for name, count in _ids(body).items() if count > 1]
    assert duplicates == []


def test_the_favicon_and_the_menu_script_are_served(client):
    from django.contrib.staticfiles import finders

    assert finders.find("favicon.svg")
    script = Path(finders.find("js/app.js")).read_text(encoding="utf-8")
    assert "nav-toggle" in script and "aria-expanded" in script
    css = Path(finders.find("css/app.css")).read_text(encoding="utf-8")
    assert "@media (min-width: 768px)" in css and ".js-nav .nav-links:not(.open)" in css


def test_the_directory_filters_are_labelled_and_the_table_becomes_cards(client):
    TradeAssuredSupplierFactory()
    body = client.get(reverse("suppliers:directory")).content.decode()
    assert 'class="filters"' in body
    for label in ("Search", "Country", "Category", "Trade Assurance"):
        assert re.search(rf"<label[^>]*>{label}<", body), label
    assert '<table class="cards">' in body and 'data-label="Country"' in body


def test_redoc_asks_no_other_host(client):
    from django.contrib.staticfiles import finders

    body = client.get(reverse("api-redoc")).content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', body)
    assert sources and all(not s.startswith(("http:", "https:", "//")) for s in sources), sources
    assert "vendor/redoc/redoc.standalone.js" in body
    bundle = Path(finders.find("vendor/redoc/redoc.standalone.js")).read_text(encoding="utf-8")
    assert "cdn.redoc.ly" not in bundle and "fonts.googleapis" not in bundle


# --- navigation and landing pages --------------------------------------------------------------
@pytest.mark.parametrize("factory", [BuyerFactory, SupplierStaffFactory])
def test_buyers_and_suppliers_have_a_disputes_item(client, factory):
    client.force_login(factory())
    body = client.get(reverse("suppliers:directory")).content.decode()
    assert f'<a href="{reverse("disputes:list")}"' in body and ">Disputes</a>" in body


@pytest.mark.parametrize(
    "factory, queue",
    [
        (MediatorFactory, "admin:disputes_dispute_changelist"),
        (VettingFactory, "admin:suppliers_tradeassuranceapplication_changelist"),
    ],
)
def test_staff_land_on_their_queues(client, factory, queue):
    client.force_login(factory())
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302 and response["Location"] == reverse(queue)
    assert client.get(response["Location"]).status_code == 200


@pytest.mark.parametrize(
    "factory, queue",
    [
        (MediatorFactory, "admin:disputes_dispute_changelist"),
        (VettingFactory, "admin:suppliers_tradeassuranceapplication_changelist"),
    ],
)
def test_the_admin_index_leads_staff_to_their_queue(client, factory, queue):
    client.force_login(factory())
    body = client.get(reverse("admin:index")).content.decode()
    assert 'id="your-queue"' in body and f'href="{reverse(queue)}"' in body


def test_the_vetting_queue_opens_on_pending_and_the_application_page_decides(client):
    # given one pending and one decided application
    pending = EligibleSupplierFactory(legal_name="Waiting Co")
    document = VerificationDocumentFactory(supplier=pending, original_name="licence-2026.pdf")
    client.force_login(supplier_staff_for(pending))
    client.post(reverse("suppliers:apply"))
    decided = EligibleSupplierFactory(legal_name="Decided Co")
    TradeAssuranceApplication.objects.create(
        supplier=decided,
        status="rejected",
        rule_checks=[],
        submitted_at=clock.now(),
        submitted_by=supplier_staff_for(decided),
        decided_at=clock.now(),
        decision_reason="No.",
    )
    client.force_login(VettingFactory())
    changelist = reverse("admin:suppliers_tradeassuranceapplication_changelist")
    # when vetting staff open the queue, then only the pending one shows
    body = client.get(changelist).content.decode()
    assert "Waiting Co" in body and "Decided Co" not in body
    assert "Decided Co" in client.get(changelist + "?queue=all").content.decode()
    # and the application page shows the documents and the decisions
    application = TradeAssuranceApplication.objects.get(supplier=pending)
    page = client.get(
        reverse("admin:suppliers_tradeassuranceapplication_change", args=[application.pk])
    ).content.decode()
    assert "licence-2026.pdf" in page
    assert reverse("suppliers:document_download", args=[document.pk]) in page
    assert 'value="approve_applications"' in page and "Approve Trade Assurance…" in page
    # and its approve button leads to the reason form for this application
    response = client.post(
        changelist, {"action": "approve_applications", "_selected_action": [application.pk]}
    )
    assert response.status_code == 200 and 'name="reason"' in response.content.decode()


# --- the order form -----------------------------------------------------------------------------
def test_the_order_form_shows_no_balance_error_before_input_and_the_limit_left(client):
    supplier = TradeAssuredSupplierFactory(ta_limit_usd=Decimal("10000.00"))
    OrderRecordFactory(supplier=supplier, status="open", amount=Decimal("7000.00"))
    product = ProductFactory(supplier=supplier)
    client.force_login(BuyerFactory())
    # the page itself and the live totals with nothing typed yet
    page = client.get(reverse("orders:create") + f"?product={product.pk}").content.decode()
    assert "USD 3,000.00" in page and "data-limit-left" in page
    empty = client.post(reverse("orders:totals"), {"items-TOTAL_FORMS": "1"}).content.decode()
    assert "more than the total" not in empty and "errorlist" not in empty
    # but an initial payment above the total is an error
    over = client.post(
        reverse("orders:totals"),
        {
            "items-TOTAL_FORMS": "1",
            "items-0-quantity": "1",
            "items-0-unit_price": "10",
            "initial_payment_amount": "50",
        },
    ).content.decode()
    assert "more than the total" in over
    # and the supplier's profile shows the limit left too
    profile = client.get(reverse("suppliers:profile", args=[supplier.pk])).content.decode()
    assert "left for new orders now" in profile and "USD 3,000.00" in profile


def test_an_over_limit_order_says_so_once_and_plainly(client):
    supplier = TradeAssuredSupplierFactory(ta_limit_usd=Decimal("10000.00"))
    product = ProductFactory(supplier=supplier, unit_price=Decimal("100.00"))
    client.force_login(BuyerFactory())
    response = client.post(
        reverse("orders:create"),
        _form_data(product, step="review", **{"items-0-quantity": "200"}),
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert body.count("Place a smaller order or split it.") == 1
    assert "≈" not in body
    assert "more than the USD 10,000.00" in body


def _heading_jumps(body: str) -> list[str]:
    main = body[body.index("<main") : body.index("</main>")]
    levels = [int(level) for level in re.findall(r"<h([1-6])[\s>]", main)]
    jumps = [f"h{a}→h{b}" for a, b in itertools.pairwise(levels) if b > a + 1]
    return jumps if levels and levels[0] == 1 else ["no h1 first", *jumps]


def test_pages_have_no_heading_jumps(client):
    # given a supplier with a product, and its staff
    supplier = TradeAssuredSupplierFactory()
    product = ProductFactory(supplier=supplier, specifications="ABS housing")
    pages = ["/", reverse("suppliers:directory"), reverse("suppliers:profile", args=[supplier.pk])]
    pages.append(reverse("suppliers:product_detail", args=[product.pk]))
    for url in pages:
        assert _heading_jumps(client.get(url).content.decode()) == [], url
    client.force_login(supplier_staff_for(supplier))
    for url in (reverse("suppliers:dashboard"), reverse("payments:money")):
        assert _heading_jumps(client.get(url).content.decode()) == [], url


def test_the_api_key_shown_once_has_a_copy_button(client):
    client.force_login(BuyerFactory())
    html = client.post(
        "/developers/keys/", {"name": "ERP", "team_role": "admin"}, follow=True
    ).content.decode()
    assert '<code id="shown-once-value">' in html
    assert 'data-copy="#shown-once-value"' in html and "Copy to clipboard" in html
    from django.contrib.staticfiles import finders

    script = Path(finders.find("js/app.js")).read_text(encoding="utf-8")
    assert "navigator.clipboard.writeText" in script
