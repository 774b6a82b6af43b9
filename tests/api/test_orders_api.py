"""Orders over /api/v1/: create, list, detail with ETag, transitions, versions, ratings."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from orders.models import ContractVersion, Order, OrderEvent, OrderStatus
from payments.models import Payment
from tests.factories import BuyerFactory, SupplierStaffFactory
from tests.orders.factories import PDF_BYTES, order_in, place_order, supplier_user_of
from tests.orders.factories import trade_assured_supplier as assured_supplier
from tests.suppliers.factories import supplier_staff_for
from tradeassure.core import clock

pytestmark = pytest.mark.django_db
S = OrderStatus
ORDERS = "/api/v1/orders/"


def _terms(**overrides) -> dict:
    terms = {
        "currency": "USD",
        "coverage": "post_delivery",
        "items": [
            {
                "description": "USB-C charger 65 W",
                "quality_requirements": "CE marked; 65 W ±5 %",
                "quantity": "100",
                "unit": "pcs",
                "unit_price": "12.50",
            }
        ],
        "shipment_deadline": (clock.now() + timedelta(days=40)).isoformat(),
        "incoterm": "FOB",
        "destination": "Felixstowe, GB",
        "shipping_method": "sea",
        "shipping_fee": "150.00",
        "initial_payment_amount": "400.00",
    }
    terms.update(overrides)
    return terms


class Counter:
    n = 0


def _post(client, url, data=None, **extra):
    Counter.n += 1
    return client.post(
        url,
        data or {},
        format=extra.pop("format", "json"),
        HTTP_IDEMPOTENCY_KEY=f"k{Counter.n}",
        **extra,
    )


def _pay_by_card(client, order_id, django_capture_on_commit_callbacks):
    payment = _post(client, f"{ORDERS}{order_id}/pay/", {"method": "card"})
    assert payment.status_code == 201, payment.json()
    with django_capture_on_commit_callbacks(execute=True):
        submitted = _post(
            client,
            f"/api/v1/payments/{payment.json()['id']}/sandbox-card/",
            {"card_number": "4242 4242 4242 4242"},
        )
    assert submitted.status_code == 202
    return payment.json()["id"]


def _documents():
    return {
        kind: SimpleUploadedFile(f"{kind}.pdf", PDF_BYTES, "application/pdf")
        for kind in ("commercial_invoice", "bill_of_lading", "packing_list")
    }


def test_a_protected_order_runs_start_to_finish_through_the_api(
    api_client_for, django_capture_on_commit_callbacks
):
    # given a buyer and a Trade Assured supplier, each with an API key
    supplier = assured_supplier()
    buyer_api = api_client_for(BuyerFactory())
    supplier_api = api_client_for(supplier_staff_for(supplier))
    # when the buyer places an order
    created = _post(buyer_api, ORDERS, {"supplier_id": supplier.pk, "terms": _terms()})
    assert created.status_code == 201, created.json()
    order = created.json()
    assert order["status"] == "pending_confirmation"
    assert order["total"] == "1400.00"
    assert order["your_party"] == "buyer"
    order_url = f"{ORDERS}{order['id']}/"
    # the supplier sees it and confirms
    assert [row["id"] for row in supplier_api.get(ORDERS).json()["results"]] == [order["id"]]
    assert "confirm" in [a["action"] for a in supplier_api.get(order_url).json()["actions"]]
    confirmed = _post(supplier_api, f"{order_url}confirm/")
    assert confirmed.json()["status"] == "awaiting_payment"
    assert confirmed.json()["payment_due"] == {"purpose": "initial", "amount": "400.00"}
    # the buyer pays the initial payment by sandbox card
    payment_id = _pay_by_card(buyer_api, order["id"], django_capture_on_commit_callbacks)
    assert buyer_api.get(f"/api/v1/payments/{payment_id}/").json()["status"] == "captured"
    detail = buyer_api.get(order_url).json()
    assert detail["status"] == "in_production"
    assert detail["money"]["held"] == "400.00"
    # the supplier asks for the balance, the buyer pays it
    assert _post(supplier_api, f"{order_url}request-balance/").json()["status"] == (
        "awaiting_balance"
    )
    _pay_by_card(buyer_api, order["id"], django_capture_on_commit_callbacks)
    assert buyer_api.get(order_url).json()["status"] == "ready_to_ship"
    # the supplier ships with its documents (multipart)
    shipped = _post(
        supplier_api,
        f"{order_url}ship/",
        {
            "carrier": "Maersk",
            "tracking_number": "MSKU1234567",
            "shipped_on": clock.now().date().isoformat(),
            **_documents(),
        },
        format="multipart",
    )
    assert shipped.status_code == 200, shipped.json()
    assert shipped.json()["status"] == "shipped"
    documents = shipped.json()["shipment"]["documents"]
    assert len(documents) == 3
    download = buyer_api.get(documents[0]["download_url"])
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == PDF_BYTES
    # the buyer confirms receipt, accepts the goods and rates the order
    assert _post(buyer_api, f"{order_url}confirm-receipt/").json()["status"] == "delivered"
    completed = _post(buyer_api, f"{order_url}accept-goods/").json()
    assert completed["status"] == "completed"
    assert completed["money"]["released"] == "1400.00"
    assert completed["money"]["held"] == "0.00"
    rating = _post(buyer_api, f"{order_url}rate/", {"score": 5, "comment": "Great"})
    assert rating.status_code == 201
    assert buyer_api.get(order_url).json()["rating"]["score"] == 5
    # then the timeline records every step
    actions = [event["action"] for event in buyer_api.get(order_url).json()["timeline"]]
    assert actions[:2] == ["place", "confirm"]
    assert "ship" in actions and "accept_goods" in actions


def test_detail_has_an_etag_and_answers_304_when_unchanged(api_client_for):
    order = place_order()
    client = api_client_for(order.buyer)
    first = client.get(f"{ORDERS}{order.pk}/")
    etag = first["ETag"]
    assert etag.startswith('"')
    assert client.get(f"{ORDERS}{order.pk}/", HTTP_IF_NONE_MATCH=etag).status_code == 304
    # after a change the ETag changes
    _post(api_client_for(supplier_user_of(order)), f"{ORDERS}{order.pk}/confirm/")
    again = client.get(f"{ORDERS}{order.pk}/", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 200
    assert again["ETag"] != etag


def test_wrong_party_gets_403_and_invalid_transition_409_and_nothing_changes(api_client_for):
    order = place_order()
    buyer_api = api_client_for(order.buyer)
    supplier_api = api_client_for(supplier_user_of(order))
    events_before = OrderEvent.objects.count()
    # the buyer may not confirm
    response = _post(buyer_api, f"{ORDERS}{order.pk}/confirm/")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    # shipping before payment is not a valid transition
    response = _post(
        supplier_api,
        f"{ORDERS}{order.pk}/ship/",
        {"carrier": "X", "tracking_number": "1", "shipped_on": clock.now().date(), **_documents()},
        format="multipart",
    )
    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"
    order.refresh_from_db()
    assert order.status == S.PENDING_CONFIRMATION
    assert OrderEvent.objects.count() == events_before


def test_invalid_contract_is_400_with_per_field_errors_and_places_nothing(api_client_for):
    supplier = assured_supplier()
    client = api_client_for(BuyerFactory())
    bad_items = [
        {
            "description": "x",
            "quality_requirements": "y",
            "quantity": "-1",
            "unit": "pcs",
            "unit_price": "abc",
        }
    ]
    response = _post(client, ORDERS, {"supplier_id": supplier.pk, "terms": _terms(items=bad_items)})
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert "terms.items.0.unit_price" in errors
    # a rule the service checks (deadline in the past) is a 400 too, with its field
    response = _post(
        client,
        ORDERS,
        {"supplier_id": supplier.pk, "terms": _terms(shipment_deadline="2020-01-01T00:00:00Z")},
    )
    assert response.status_code == 400
    assert "shipment_deadline" in response.json()["errors"]
    assert Order.objects.count() == 0


def test_suppliers_cannot_place_orders(api_client_for):
    supplier = assured_supplier()
    response = _post(
        api_client_for(SupplierStaffFactory()),
        ORDERS,
        {"supplier_id": supplier.pk, "terms": _terms()},
    )
    assert response.status_code == 403
    assert Order.objects.count() == 0


def test_contract_versions_propose_and_accept(api_client_for):
    order = place_order()
    buyer_api = api_client_for(order.buyer)
    supplier_api = api_client_for(supplier_user_of(order))
    # the supplier proposes a later deadline and a higher price instead of confirming
    later = (order.shipment_deadline + timedelta(days=10)).isoformat()
    proposed = _post(
        supplier_api,
        f"{ORDERS}{order.pk}/propose-changes/",
        {"note": "Need 10 more days", "terms": _terms(shipment_deadline=later)},
    )
    assert proposed.status_code == 201, proposed.json()
    assert proposed.json()["number"] == 2
    assert proposed.json()["state"] == "proposed"
    assert buyer_api.get(f"{ORDERS}{order.pk}/").json()["proposal_pending_from"] == "supplier"
    # the buyer accepts: the order is confirmed on version 2
    accepted = _post(buyer_api, f"{ORDERS}{order.pk}/accept-changes/")
    assert accepted.json()["status"] == "awaiting_payment"
    assert accepted.json()["contract"]["number"] == 2
    assert [v["state"] for v in accepted.json()["versions"]] == ["accepted", "accepted"]
    assert ContractVersion.objects.filter(order=order).count() == 2


def test_buyer_cancels_a_late_order_and_the_refund_is_visible(api_client_for):
    from tests.orders.factories import with_time_past_deadline

    order = order_in(S.IN_PRODUCTION)
    with_time_past_deadline(order)
    client = api_client_for(order.buyer)
    refunded = _post(client, f"{ORDERS}{order.pk}/cancel-late/", {"reason": "Too late"})
    assert refunded.status_code == 200, refunded.json()
    assert refunded.json()["status"] == "refunded"
    assert refunded.json()["money"]["refunded"] == "400.00"
    assert refunded.json()["money"]["held"] == "0.00"


def test_pay_is_idempotent_and_only_for_the_buyer(api_client_for):
    order = order_in(S.AWAITING_PAYMENT)
    client = api_client_for(order.buyer)
    first = _post(client, f"{ORDERS}{order.pk}/pay/", {"method": "bank_transfer"})
    second = _post(client, f"{ORDERS}{order.pk}/pay/", {"method": "bank_transfer"})
    assert first.json()["id"] == second.json()["id"]
    detail = client.get(f"/api/v1/payments/{first.json()['id']}/").json()
    assert detail["bank_transfer_instructions"]
    response = _post(
        api_client_for(supplier_user_of(order)), f"{ORDERS}{order.pk}/pay/", {"method": "card"}
    )
    assert response.status_code == 403
    assert Payment.objects.count() == 1


def test_list_filters_by_status_and_search(api_client_for):
    buyer = BuyerFactory()
    pending = place_order(buyer=buyer, purchase_order_number="PO-777")
    other = place_order(buyer=buyer)
    from orders import services

    services.order_confirm(order=other, actor=supplier_user_of(other))
    client = api_client_for(buyer)

    def ids(query):
        return [row["id"] for row in client.get(f"{ORDERS}{query}").json()["results"]]

    assert ids("?status=pending_confirmation") == [pending.pk]
    assert ids("?status=awaiting_payment&status=pending_confirmation") == [other.pk, pending.pk]
    assert ids("?q=PO-777") == [pending.pk]
    assert ids(f"?supplier={other.supplier_id}") == [other.pk]
    assert ids("?ordering=placed_at") == [pending.pk, other.pk]
    assert client.get(f"{ORDERS}?status=nonsense").status_code == 400


@pytest.mark.parametrize("rows", [2, 12])
def test_order_list_runs_a_constant_number_of_queries(
    rows, api_client_for, django_assert_max_num_queries
):
    buyer = BuyerFactory()
    supplier = assured_supplier()
    for _ in range(rows):
        place_order(buyer=buyer, supplier=supplier)
    client = api_client_for(buyer)
    with django_assert_max_num_queries(4):
        response = client.get(ORDERS)
    assert len(response.json()["results"]) == rows


@pytest.mark.parametrize("status", [S.PENDING_CONFIRMATION, S.COMPLETED])
def test_order_detail_runs_a_bounded_number_of_queries(
    status, api_client_for, django_assert_max_num_queries
):
    from orders import services

    # Completed: escrow sums, a shipment with documents and a rating all in the answer. The
    # count includes the API key's first-use touch (`last_used_at`).
    order = order_in(status)
    if status == S.COMPLETED:
        services.order_rate(order=order, actor=order.buyer, score=5)
    client = api_client_for(order.buyer)
    with django_assert_max_num_queries(11):
        response = client.get(f"{ORDERS}{order.pk}/")
    assert response.status_code == 200
    assert response.json()["status"] == status


def test_a_jpy_initial_payment_with_decimals_is_refused_naming_the_decimals(api_client_for):
    # given a JPY contract whose initial payment has a fraction of a yen
    supplier = assured_supplier()
    client = api_client_for(BuyerFactory())
    terms = _terms(
        currency="JPY",
        items=[{**_terms()["items"][0], "unit_price": "1250"}],
        shipping_fee="1500",
        initial_payment_amount="100.5",
    )

    # when the buyer places it
    response = _post(client, ORDERS, {"supplier_id": supplier.pk, "terms": terms})

    # then the error says JPY has no decimals (not "more than 0"), and nothing was placed
    assert response.status_code == 400
    messages = response.json()["errors"]["initial_payment_amount"]
    assert messages == [
        "The initial payment has too many decimals: JPY allows 0 decimal places (whole JPY only)."
    ]
    assert Order.objects.count() == 0
