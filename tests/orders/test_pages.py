"""The browser side, through Django's test client: a whole order placed, confirmed, paid,
shipped, received, accepted and rated; who may see what; constant queries on the pages."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase
from django.urls import reverse

from orders.models import ContractVersion, Order, OrderEvent, OrderStatus, ShipmentDocument
from payments.selectors import escrow_summary
from tests.factories import PASSWORD, BuyerFactory, SupplierStaffFactory
from tests.orders.factories import PDF_BYTES, order_in, place_order, supplier_user_of
from tests.suppliers.factories import ProductFactory
from tradeassure.core import clock

pytestmark = pytest.mark.django_db
S = OrderStatus


def _login(client, user):
    assert client.login(email=user.email, password=PASSWORD)
    return client


def _pay_through_pages(client, order):
    response = client.post(reverse("orders:pay", args=[order.pk]), {"method": "card"})
    assert response.status_code == 302
    payment_url = response["Location"]
    assert payment_url.startswith("/payments/")
    public_id = payment_url.strip("/").split("/")[-1]
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(
            reverse("payments:payment_card", args=[public_id]),
            {"card_number": "4242 4242 4242 4242", "expiry": "12/30", "cvc": "123"},
        )
    assert response.status_code == 302


def _form_data(product, **overrides):
    deadline = (clock.now() + timedelta(days=40)).date().isoformat()
    data = {
        "supplier_id": product.supplier_id,
        "product_id": product.pk,
        "items-TOTAL_FORMS": "2",
        "items-INITIAL_FORMS": "0",
        "items-MIN_NUM_FORMS": "1",
        "items-MAX_NUM_FORMS": "50",
        "items-0-product": product.pk,
        "items-0-quality_requirements": "Voltage 5 V ± 0.1 V; 0 dead pixels",
        "items-0-quantity": "200",
        "items-1-description": "Custom gift box",
        "items-1-quality_requirements": "300 gsm board, 4-colour print, no scuffs",
        "items-1-quantity": "200",
        "items-1-unit": "pcs",
        "items-1-unit_price": "0.75",
        "currency": "USD",
        "coverage": "post_delivery",
        "shipment_deadline": deadline,
        "incoterm": "FOB",
        "destination": "Port of Felixstowe",
        "shipping_method": "sea",
        "shipping_fee": "80.00",
        "initial_payment_amount": "300.00",
        "packaging": "10 per carton",
        "customisation": "",
        "purchase_order_number": "PO-7781",
        "note": "",
    }
    data.update(overrides)
    return data


def test_a_buyer_places_and_a_supplier_confirms_and_ships_entirely_through_the_pages(client):
    # given a Trade Assurance supplier with a catalogue product, its staff, and a buyer
    from tests.orders.factories import trade_assured_supplier

    supplier = trade_assured_supplier()
    product = ProductFactory(
        supplier=supplier, unit_price=Decimal("2.50"), minimum_order_quantity=100
    )
    supplier_user = SupplierStaffFactory(organisation=supplier.organisation)
    buyer = BuyerFactory()
    buyer_client = _login(client, buyer)
    from django.test import Client

    supplier_client = _login(Client(), supplier_user)

    # when the buyer opens the order form from the product page
    response = buyer_client.get(reverse("orders:create") + f"?product={product.pk}")
    # then the form is prefilled from the product
    assert response.status_code == 200
    assert product.name in response.content.decode()

    # when the live totals partial is asked for
    response = buyer_client.post(reverse("orders:totals"), _form_data(product))
    # then it computes 200 x 2.50 + 200 x 0.75 + 80 = 730.00
    assert "USD 730.00" in response.content.decode()

    # when the buyer reviews, then submits
    response = buyer_client.post(
        reverse("orders:create"), {**_form_data(product), "step": "review"}
    )
    assert response.status_code == 200
    assert "Review your order" in response.content.decode()
    assert Order.objects.count() == 0
    response = buyer_client.post(
        reverse("orders:create"), {**_form_data(product), "step": "submit"}
    )
    order = Order.objects.get()
    assert response.status_code == 302 and response["Location"] == order.get_absolute_url()
    assert order.total == Decimal("730.00")
    assert order.balance_amount == Decimal("430.00")
    assert order.status == S.PENDING_CONFIRMATION

    # when the supplier sees it on the orders page and confirms it
    response = supplier_client.get(reverse("orders:supplier_list"))
    assert order.reference in response.content.decode()
    response = supplier_client.get(order.get_absolute_url())
    assert "Confirm order" in response.content.decode()
    supplier_client.post(reverse("orders:action", args=[order.pk, "confirm"]))
    order.refresh_from_db()
    assert order.status == S.AWAITING_PAYMENT

    # when the buyer pays the initial payment by card on the payment page
    _pay_through_pages(buyer_client, order)
    order.refresh_from_db()
    assert order.status == S.IN_PRODUCTION

    # when the supplier requests the balance and the buyer pays it
    supplier_client.post(reverse("orders:action", args=[order.pk, "request_balance"]))
    _pay_through_pages(buyer_client, order)
    order.refresh_from_db()
    assert order.status == S.READY_TO_SHIP
    assert escrow_summary(escrow_reference=order.escrow_reference).held == Decimal("730.00")

    # when the supplier records the shipment with its documents
    assert supplier_client.get(reverse("orders:ship", args=[order.pk])).status_code == 200
    files = {
        kind: SimpleUploadedFile(f"{kind}.pdf", PDF_BYTES, "application/pdf")
        for kind in ShipmentDocument.Kind.values
    }
    response = supplier_client.post(
        reverse("orders:ship", args=[order.pk]),
        {
            "carrier": "COSCO",
            "tracking_number": "COSU6123456789",
            "shipped_on": clock.now().date().isoformat(),
            **files,
        },
    )
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == S.SHIPPED
    # then the buyer can download the bill of lading, an outsider cannot
    document = ShipmentDocument.objects.get(kind="bill_of_lading")
    url = reverse("orders:shipment_document", args=[order.pk, document.pk])
    assert buyer_client.get(url).status_code == 200
    outsider = _login(Client(), BuyerFactory())
    assert outsider.get(url).status_code == 404

    # when the buyer confirms receipt, accepts the goods and rates the order
    buyer_client.post(reverse("orders:action", args=[order.pk, "confirm_receipt"]))
    buyer_client.post(reverse("orders:action", args=[order.pk, "accept_goods"]))
    buyer_client.post(reverse("orders:rate", args=[order.pk]), {"score": "5", "comment": "Great"})

    # then the order is completed, the money released, the rating recorded, the timeline whole
    order.refresh_from_db()
    assert order.status == S.COMPLETED
    assert order.rating_score == 5
    money = escrow_summary(escrow_reference=order.escrow_reference)
    assert money.released == Decimal("730.00") and money.held == 0
    actions = list(OrderEvent.objects.filter(order=order).values_list("action", flat=True))
    assert actions == [
        "place",
        "confirm",
        "initial_payment_captured",
        "request_balance",
        "balance_payment_captured",
        "ship",
        "confirm_receipt",
        "accept_goods",
        "rate",
    ]
    page = buyer_client.get(order.get_absolute_url()).content.decode()
    assert "Released to the supplier" in page and "USD 730.00" in page


def test_the_supplier_proposes_changes_and_the_buyer_sees_the_differences_and_accepts(client):
    # given an order waiting for confirmation
    order = place_order()
    from django.test import Client

    supplier_client = _login(Client(), supplier_user_of(order))
    buyer_client = _login(client, order.buyer)
    version = order.current_version
    item = version.items.get()
    form = {
        "items-TOTAL_FORMS": "1",
        "items-INITIAL_FORMS": "1",
        "items-MIN_NUM_FORMS": "1",
        "items-MAX_NUM_FORMS": "50",
        "items-0-description": item.description,
        "items-0-quality_requirements": item.quality_requirements,
        "items-0-specifications": item.specifications,
        "items-0-quantity": "100",
        "items-0-unit": "pcs",
        "items-0-unit_price": "13.00",
        "currency": "USD",
        "coverage": version.coverage,
        "shipment_deadline": version.shipment_deadline.date().isoformat(),
        "incoterm": version.incoterm,
        "destination": version.destination,
        "shipping_method": version.shipping_method,
        "shipping_fee": "150.00",
        "initial_payment_amount": "400.00",
        "packaging": version.packaging,
        "customisation": version.customisation,
        "note": "Component prices went up",
    }
    # when the supplier proposes a higher unit price
    response = supplier_client.post(reverse("orders:propose_changes", args=[order.pk]), form)
    assert response.status_code == 302
    # then the buyer sees the difference and may accept it
    page = buyer_client.get(order.get_absolute_url()).content.decode()
    assert "Line 1 unit price" in page and "13.00" in page and "Accept changes" in page
    buyer_client.post(reverse("orders:action", args=[order.pk, "accept_changes"]))
    order.refresh_from_db()
    assert order.status == S.AWAITING_PAYMENT
    assert order.total == Decimal("1450.00")
    assert order.current_version.number == 2
    assert ContractVersion.objects.filter(order=order, state="accepted").count() == 2


def test_a_bad_contract_shows_errors_and_places_nothing(client):
    # given a buyer and a product
    from tests.orders.factories import trade_assured_supplier

    product = ProductFactory(supplier=trade_assured_supplier(), minimum_order_quantity=100)
    buyer_client = _login(client, BuyerFactory())
    # when the quantity is under the MOQ, the deadline in the past and the initial payment too big
    data = _form_data(
        product,
        **{
            "items-0-quantity": "5",
            "shipment_deadline": "2000-01-01",
            "initial_payment_amount": "999999",
            "step": "submit",
        },
    )
    response = buyer_client.post(reverse("orders:create"), data)
    # then the page explains and nothing was placed
    assert response.status_code == 400
    assert "must be in the future" in response.content.decode()
    assert Order.objects.count() == 0
    # and with a valid deadline the MOQ and the initial payment are reported by the service
    data["shipment_deadline"] = (clock.now() + timedelta(days=30)).date().isoformat()
    response = buyer_client.post(reverse("orders:create"), data)
    body = response.content.decode()
    assert response.status_code == 400
    assert "minimum order" in body
    assert Order.objects.count() == 0


def test_a_jpy_initial_payment_with_decimals_names_the_decimals_on_the_form(client):
    # given a buyer filling in a JPY contract with an initial payment of 100.5
    from tests.orders.factories import trade_assured_supplier

    product = ProductFactory(
        supplier=trade_assured_supplier(),
        minimum_order_quantity=1,
        currency="JPY",
        unit_price=Decimal("350"),
    )
    buyer_client = _login(client, BuyerFactory())
    data = _form_data(
        product,
        currency="JPY",
        shipping_fee="80",
        initial_payment_amount="100.5",
        step="submit",
        **{"items-1-unit_price": "75"},
    )

    # when the form is submitted
    response = buyer_client.post(reverse("orders:create"), data)

    # then the form names the decimals JPY allows, and nothing was placed
    body = response.content.decode()
    assert response.status_code == 400
    assert "JPY allows 0 decimal places (whole JPY only)" in body
    assert "must be more than 0" not in body
    assert Order.objects.count() == 0


@pytest.mark.parametrize("garbage", ["abc", "-1", "1e999", "NaN", ""])
def test_garbage_input_never_500s(client, garbage):
    from tests.orders.factories import trade_assured_supplier

    product = ProductFactory(supplier=trade_assured_supplier())
    buyer_client = _login(client, BuyerFactory())
    data = _form_data(
        product,
        **{
            "items-0-quantity": garbage,
            "shipping_fee": garbage,
            "items-TOTAL_FORMS": garbage or "x",
        },
    )
    assert buyer_client.post(reverse("orders:totals"), data).status_code == 200
    assert buyer_client.post(reverse("orders:create"), {**data, "step": "review"}).status_code in (
        200,
        400,
    )
    assert Order.objects.count() == 0


def test_only_the_two_parties_and_staff_see_an_order(client, mediator):
    # given an order, an outsider buyer and an outsider supplier
    order = place_order()
    outsider_buyer = BuyerFactory()
    outsider_supplier = SupplierStaffFactory()
    colleague = BuyerFactory(organisation=order.buyer_organisation)
    url = order.get_absolute_url()
    from django.test import Client

    # then outsiders get 404, the buyer's colleague and the supplier and a mediator get the page
    assert _login(Client(), outsider_buyer).get(url).status_code == 404
    assert _login(Client(), outsider_supplier).get(url).status_code == 404
    assert _login(Client(), colleague).get(url).status_code == 200
    assert _login(Client(), supplier_user_of(order)).get(url).status_code == 200
    assert _login(Client(), mediator).get(url).status_code == 200
    # and outsiders cannot act either, nothing changes
    response = _login(Client(), outsider_supplier).post(
        reverse("orders:action", args=[order.pk, "confirm"])
    )
    assert response.status_code == 404
    order.refresh_from_db()
    assert order.status == S.PENDING_CONFIRMATION
    # and lists show only their own orders
    assert (
        order.reference
        not in _login(Client(), outsider_buyer).get(reverse("orders:buyer_list")).content.decode()
    )


def test_a_buyer_cannot_use_a_supplier_action_through_the_page(client):
    order = place_order()
    response = _login(client, order.buyer).post(
        reverse("orders:action", args=[order.pk, "confirm"]), follow=True
    )
    assert "may not" in response.content.decode()
    order.refresh_from_db()
    assert order.status == S.PENDING_CONFIRMATION
    assert order.events.count() == 1


def test_list_search_and_filters(client):
    order = place_order(purchase_order_number="PO-99")
    other = place_order(buyer=order.buyer)
    client = _login(client, order.buyer)
    page = client.get(reverse("orders:buyer_list") + f"?q={order.reference}").content.decode()
    assert order.reference in page and other.reference not in page
    page = client.get(reverse("orders:buyer_list") + "?status=closed").content.decode()
    assert order.reference not in page


def _make_orders(n, buyer=None, supplier=None):
    from tests.orders.factories import trade_assured_supplier

    supplier = supplier or trade_assured_supplier()
    buyer = buyer or BuyerFactory()
    return [place_order(buyer=buyer, supplier=supplier) for _ in range(n)]


@pytest.mark.parametrize(
    "url_name,side", [("orders:buyer_list", "buyer"), ("orders:supplier_list", "supplier")]
)
def test_list_pages_run_a_constant_number_of_queries(
    client, django_assert_num_queries, url_name, side
):
    # given 2 orders, count the queries; then 12 orders: the same count
    orders = _make_orders(2)
    user = orders[0].buyer if side == "buyer" else supplier_user_of(orders[0])
    client = _login(client, user)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small:
        assert client.get(reverse(url_name)).status_code == 200
    _make_orders(10, buyer=orders[0].buyer, supplier=orders[0].supplier)
    with django_assert_num_queries(len(small.captured_queries)):
        response = client.get(reverse(url_name))
    assert response.content.decode().count("/orders/") >= 12


def test_the_order_page_runs_a_constant_number_of_queries(client, django_assert_num_queries):
    # given an order with one line and one version, and one with 3 lines, 3 versions, more events
    from dataclasses import replace

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from orders import services
    from tests.orders.factories import LineItemTermsFactory

    short = order_in(S.IN_PRODUCTION)
    long = order_in(S.IN_PRODUCTION, items=[LineItemTermsFactory() for _ in range(3)])
    for packaging in ("Pallets", "Crates"):
        terms = services.contract_terms_of(long.current_version)
        services.order_propose_changes(
            order=long, actor=long.buyer, terms=replace(terms, packaging=packaging)
        )
        long = services.order_accept_changes(order=long, actor=supplier_user_of(long))
    assert long.versions.count() == 3 and long.events.count() > short.events.count()
    client = _login(client, short.buyer)
    with CaptureQueriesContext(connection) as first:
        assert client.get(short.get_absolute_url()).status_code == 200
    client = _login(client, long.buyer)
    # then both pages run the same number of queries
    with django_assert_num_queries(len(first.captured_queries)):
        assert client.get(long.get_absolute_url()).status_code == 200


def test_mediators_read_orders_in_the_admin_but_cannot_change_them(client, mediator):
    # given an order with a timeline
    order = order_in(S.SHIPPED)
    client = _login(client, mediator)
    # then the list filters by status and the order page shows the events, read-only
    response = client.get(reverse("admin:orders_order_changelist") + "?status__exact=shipped")
    assert response.status_code == 200 and order.reference in response.content.decode()
    page = client.get(reverse("admin:orders_order_change", args=[order.pk]))
    assert page.status_code == 200
    assert "MSKU1234567" in page.content.decode()  # the shipment event, inline
    response = client.post(
        reverse("admin:orders_order_change", args=[order.pk]), {"status": "completed"}
    )
    assert response.status_code == 403
    order.refresh_from_db()
    assert order.status == S.SHIPPED
    # and an outsider without staff rights sees nothing of it
    outsider = _login(client, BuyerFactory())
    assert outsider.get(reverse("admin:orders_order_change", args=[order.pk])).status_code == 302


def test_the_demo_data_covers_every_status_and_is_idempotent():
    from orders.demo import seed
    from tradeassure.platform.demo import seed_demo_users

    users = seed_demo_users()
    from suppliers.demo import seed as seed_suppliers

    seed_suppliers(users)
    seed(users)
    statuses = set(Order.objects.values_list("status", flat=True))
    assert statuses >= set(S.values) - {S.DISPUTED}  # disputed orders come with the disputes demo
    soon = clock.now() + timedelta(minutes=11)
    assert Order.objects.filter(confirmation_due_at__lte=soon).count() == 1
    assert Order.objects.filter(shipment_due_at__lte=soon).count() == 1
    counts = (Order.objects.count(), OrderEvent.objects.count())
    seed(users)
    assert (Order.objects.count(), OrderEvent.objects.count()) == counts


def test_once_money_is_held_the_proposal_page_freezes_money_terms(client):
    # given an order in production (money held)
    order = order_in(S.IN_PRODUCTION)
    supplier_client = _login(client, supplier_user_of(order))
    url = reverse("orders:propose_changes", args=[order.pk])
    page = supplier_client.get(url).content.decode()
    assert "frozen" in page
    version = order.current_version
    item = version.items.get()
    form = {
        "items-TOTAL_FORMS": "1",
        "items-INITIAL_FORMS": "1",
        "items-MIN_NUM_FORMS": "1",
        "items-MAX_NUM_FORMS": "50",
        "items-0-description": item.description,
        "items-0-quality_requirements": item.quality_requirements + "; IP54",
        "items-0-specifications": item.specifications,
        # a tampered price: disabled fields keep the contract's value
        "items-0-unit_price": "99.00",
        "items-0-quantity": "1",
        "shipment_deadline": version.shipment_deadline.date().isoformat(),
        "incoterm": version.incoterm,
        "destination": version.destination,
        "shipping_method": version.shipping_method,
        "packaging": version.packaging,
        "customisation": version.customisation,
        "note": "Add IP54 to the quality requirements",
    }
    # when the supplier proposes a quality change (and tries to slip in a price)
    response = supplier_client.post(url, form)
    # then the proposal keeps every money term and only the quality requirement changes
    assert response.status_code == 302
    proposal = ContractVersion.objects.get(order=order, number=2)
    line = proposal.items.get()
    assert (line.unit_price, line.quantity, proposal.total) == (
        item.unit_price,
        item.quantity,
        version.total,
    )
    assert line.quality_requirements.endswith("IP54")


def test_a_disputed_order_shows_its_paused_timers(client):
    from orders import services

    order = order_in(S.IN_PRODUCTION)
    services.order_dispute_opened(order=order, actor=order.buyer)
    client = _login(client, order.buyer)
    page = client.get(order.get_absolute_url()).content.decode()
    assert "Paused: shipment deadline with 4" in page  # 44 days 23 h, give or take
    listing = client.get(reverse("orders:buyer_list")).content.decode()
    assert "timers paused (dispute)" in listing
