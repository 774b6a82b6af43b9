"""Full protected orders driven through the API only, over real HTTP, against a live server on
PostgreSQL: create → confirm → pay (sandbox) → balance → ship → confirm receipt → dispute with
evidence → settled by an accepted proposal → refund visible; the buyer's webhook receiver gets
every order event, signed."""

import json
import uuid
from datetime import timedelta

import pytest
import requests
import time_machine

from tests.api.receiver import verify_signature
from tests.factories import BuyerFactory
from tests.orders.factories import PDF_BYTES, trade_assured_supplier
from tests.suppliers.factories import supplier_staff_for
from tradeassure.core import clock
from tradeassure.platform.api.services import api_key_create

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


class Api:
    """A partner's HTTP client: API key, Idempotency-Key on every POST, problem+json on errors."""

    def __init__(self, base: str, user):
        _, self.key = api_key_create(actor=user, name="live test")
        self.base = f"{base}/api/v1"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {self.key}"

    def get(self, path: str, expect: int = 200) -> dict:
        response = self.session.get(f"{self.base}{path}", timeout=30)
        assert response.status_code == expect, response.text
        return response.json()

    def post(self, path: str, body: dict | None = None, expect: int = 200, files=None, key=None):
        headers = {"Idempotency-Key": key or str(uuid.uuid4())}
        if files is not None:
            response = self.session.post(
                f"{self.base}{path}", data=body, files=files, headers=headers, timeout=30
            )
        else:
            response = self.session.post(
                f"{self.base}{path}", json=body or {}, headers=headers, timeout=30
            )
        assert response.status_code == expect, response.text
        return response


def _terms(deadline_days: int = 40) -> dict:
    return {
        "currency": "USD",
        "coverage": "post_delivery",
        "items": [
            {
                "description": "Bluetooth speaker",
                "quality_requirements": "10 W RMS; drop test 1.2 m",
                "quantity": "100",
                "unit": "pcs",
                "unit_price": "12.50",
            }
        ],
        "shipment_deadline": (clock.now() + timedelta(days=deadline_days)).isoformat(),
        "incoterm": "FOB",
        "destination": "Felixstowe, GB",
        "shipping_method": "sea",
        "shipping_fee": "150.00",
        "initial_payment_amount": "400.00",
    }


def _pay(buyer: Api, order_id: int) -> None:
    payment = buyer.post(f"/orders/{order_id}/pay/", {"method": "card"}, expect=201).json()
    assert payment["payment_url"].startswith("http")
    buyer.post(
        f"/payments/{payment['id']}/sandbox-card/",
        {"card_number": "4242 4242 4242 4242"},
        expect=202,
    )
    assert buyer.get(f"/payments/{payment['id']}/")["status"] == "captured"


def test_full_protected_order_over_http(live_server, receiver, settings):
    # given a buyer and a Trade Assured supplier with API keys, and the buyer's webhook receiver
    supplier = trade_assured_supplier()
    buyer = Api(live_server.url, BuyerFactory())
    seller = Api(live_server.url, supplier_staff_for(supplier))
    endpoint = buyer.post(
        "/webhook-endpoints/", {"url": receiver.url, "topics": ["order.*"]}, expect=201
    ).json()

    # when the buyer places an order (retrying the POST with the same key places one order)
    key, body = str(uuid.uuid4()), {"supplier_id": supplier.pk, "terms": _terms()}
    created = buyer.post("/orders/", body, 201, key=key)
    replay = buyer.post("/orders/", body, 201, key=key)
    assert replay.headers["Idempotent-Replayed"] == "true"
    order = created.json()
    assert len(buyer.get("/orders/")["results"]) == 1
    path = f"/orders/{order['id']}"

    # the supplier confirms; the buyer pays the initial payment by sandbox card
    assert seller.post(f"{path}/confirm/").json()["status"] == "awaiting_payment"
    # a second confirm is an invalid transition, as problem+json
    conflict = seller.post(f"{path}/confirm/", expect=409)
    assert conflict.headers["Content-Type"] == "application/problem+json"
    assert conflict.json()["code"] == "invalid_transition"
    _pay(buyer, order["id"])
    assert buyer.get(f"{path}/")["status"] == "in_production"

    # balance requested and paid; shipment recorded with its three documents
    seller.post(f"{path}/request-balance/")
    _pay(buyer, order["id"])
    files = {
        kind: (f"{kind}.pdf", PDF_BYTES, "application/pdf")
        for kind in ("commercial_invoice", "bill_of_lading", "packing_list")
    }
    shipped = seller.post(
        f"{path}/ship/",
        {
            "carrier": "Maersk",
            "tracking_number": "MSKU7654321",
            "shipped_on": clock.now().date().isoformat(),
        },
        files=files,
    ).json()
    assert shipped["status"] == "shipped"
    document = buyer.session.get(
        f"{live_server.url}{shipped['shipment']['documents'][0]['download_url']}", timeout=30
    )
    assert document.status_code == 200 and document.content == PDF_BYTES

    # the buyer confirms receipt, then finds a quality problem and opens a dispute with evidence
    assert buyer.post(f"{path}/confirm-receipt/").json()["status"] == "delivered"
    dispute = buyer.post(
        "/disputes/",
        {
            "order_id": order["id"],
            "type": "quality",
            "description": "12 of 100 speakers cracked in the drop test.",
            "remedy": "partial_refund",
            "refund_amount": "300.00",
        },
        files={"files": ("photos.pdf", PDF_BYTES, "application/pdf")},
        expect=201,
    ).json()
    assert buyer.get(f"{path}/")["money"]["frozen"] is True
    evidence = buyer.post(
        f"/disputes/{dispute['id']}/evidence/",
        {"description": "Drop test report"},
        files={"files": ("report.pdf", PDF_BYTES, "application/pdf")},
        expect=201,
    ).json()
    download = seller.session.get(f"{live_server.url}{evidence[0]['download_url']}", timeout=30)
    assert download.status_code == 200 and download.content == PDF_BYTES
    # the supplier counter-proposes USD 200 and the buyer accepts: the dispute is settled
    seller.post(f"/disputes/{dispute['id']}/messages/", {"body": "Sorry, checking."}, expect=201)
    counter = seller.post(
        f"/disputes/{dispute['id']}/proposals/",
        {"remedy": "partial_refund", "refund_amount": "200.00", "message": "200 covers it"},
        expect=201,
    ).json()
    settled = buyer.post(
        f"/disputes/{dispute['id']}/accept-proposal/", {"proposal_id": counter["id"]}
    ).json()
    assert settled["status"] == "resolved"
    # then the refund is visible on the order, and the rest went to the supplier
    completed = buyer.get(f"{path}/")
    assert completed["status"] == "completed"
    assert completed["money"]["refunded"] == "200.00"
    assert completed["money"]["released"] == "1200.00"
    assert completed["money"]["held"] == "0.00"
    assert completed["money"]["frozen"] is False
    buyer.post(f"{path}/rate/", {"score": 3}, expect=201)

    # then ETag works over HTTP
    first = buyer.session.get(f"{buyer.base}{path}/", timeout=30)
    again = buyer.session.get(
        f"{buyer.base}{path}/", headers={"If-None-Match": first.headers["ETag"]}, timeout=30
    )
    assert again.status_code == 304

    # and the events feed and the webhook receiver saw the same order events, signed
    feed = [event["topic"] for event in buyer.get("/events/?topic_prefix=order.")["results"]]
    assert feed[:2] == ["order.placed", "order.confirmed"]
    assert "order.shipped" in feed and "order.disputed" in feed
    assert "order.dispute_resolved" in feed
    received = [json.loads(request.body)["topic"] for request in receiver.requests]
    assert received == feed
    from tradeassure.platform.models import WebhookEndpoint

    secret = WebhookEndpoint.objects.get(pk=endpoint["id"]).secret
    assert all(verify_signature(secret, r.headers, r.body) for r in receiver.requests)
    assert len(set(receiver.delivery_ids())) == len(receiver.requests)
    deliveries = buyer.get(f"/webhook-deliveries/?endpoint={endpoint['id']}&status=succeeded")
    assert len(deliveries["results"]) == len(feed)


def test_late_order_is_cancelled_with_a_full_refund_over_http(live_server):
    # given an order in production whose shipment deadline passes
    supplier = trade_assured_supplier()
    buyer = Api(live_server.url, BuyerFactory())
    seller = Api(live_server.url, supplier_staff_for(supplier))
    order = buyer.post("/orders/", {"supplier_id": supplier.pk, "terms": _terms(10)}, 201).json()
    path = f"/orders/{order['id']}"
    seller.post(f"{path}/confirm/")
    _pay(buyer, order["id"])
    with time_machine.travel(clock.now() + timedelta(days=11)):
        from orders.services import orders_sweep_shipment_deadlines

        orders_sweep_shipment_deadlines()  # the beat task that flags late orders
        assert buyer.get(f"{path}/")["is_late"] is True
        # when the buyer cancels the late order
        refunded = buyer.post(f"{path}/cancel-late/", {"reason": "Not shipped in time"}).json()
    # then the whole initial payment is refunded and visible on the order
    assert refunded["status"] == "refunded"
    assert refunded["money"]["refunded"] == "400.00"
    assert refunded["money"]["held"] == "0.00"
    # and the supplier can no longer act on it
    assert seller.post(f"{path}/mark-ready/", expect=409).json()["code"] == "invalid_transition"
