"""Faults on a running production-profile stack: web (gunicorn), Celery workers and beats as
separate processes, on the test's own PostgreSQL cluster and Redis server, which the tests stop,
restart and kill. What must hold: no request fails because Redis is down, no payment or
notification is lost, nothing happens twice, and the stack recovers without a restart.

Each wait is bounded by harness.WAIT_SECONDS (it polls for an outcome, never asserts a duration).
"""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from tests.faults.harness import wait_for

pytestmark = pytest.mark.faults

CARD = "4242 4242 4242 4242"


def terms(deadline_days: int = 40) -> dict:
    return {
        "currency": "USD",
        "coverage": "post_delivery",
        "items": [
            {
                "description": "Bluetooth speaker",
                "quality_requirements": "10 W RMS",
                "quantity": "10",
                "unit": "pcs",
                "unit_price": "12.50",
            }
        ],
        "shipment_deadline": (datetime.now(UTC) + timedelta(days=deadline_days)).isoformat(),
        "incoterm": "FOB",
        "destination": "Felixstowe, GB",
        "shipping_method": "sea",
        "shipping_fee": "15.00",
        "initial_payment_amount": "40.00",
    }


def place_and_confirm(stack, buyer, seller) -> int:
    placed = buyer.post(
        "/orders/", {"supplier_id": stack.base.seed["supplier_id"], "terms": terms()}
    )
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    confirmed = seller.post(f"/orders/{order_id}/confirm/")
    assert confirmed.status_code == 200, confirmed.text
    return order_id


def pay_by_card(buyer, order_id: int) -> str:
    payment = buyer.post(f"/orders/{order_id}/pay/", {"method": "card"})
    assert payment.status_code == 201, payment.text
    payment_id = payment.json()["id"]
    card = buyer.post(f"/payments/{payment_id}/sandbox-card/", {"card_number": CARD})
    assert card.status_code == 202, card.text
    return payment_id


def order_status(buyer, order_id: int) -> str:
    return buyer.get(f"/orders/{order_id}/").json()["status"]


def everything_sent(stack) -> bool:
    """The outbox is empty and every webhook delivery has succeeded."""
    pending_outbox = stack.scalar(
        "SELECT count(*) FROM tradeassure_outboxmessage WHERE status <> 'sent'"
    )
    pending_hooks = stack.scalar(
        "SELECT count(*) FROM tradeassure_webhookdelivery WHERE status <> 'succeeded'"
    )
    return pending_outbox == 0 and pending_hooks == 0


def assert_each_effect_once(stack, receiver) -> None:
    """Every webhook delivery reached the receiver once; every email was sent once."""
    delivery_ids = {
        str(row[0]) for row in stack.query("SELECT id FROM tradeassure_webhookdelivery")
    }
    received = Counter(receiver.delivery_ids())
    assert set(received) == delivery_ids
    assert all(count == 1 for count in received.values()), received
    emails = stack.query(
        "SELECT payload->>'to', payload->>'subject' FROM tradeassure_outboxmessage"
        " WHERE channel = 'email'"
    )
    sent = Counter((mail["to"][0], mail["subject"]) for mail in stack.mails())
    assert sent == Counter(emails)


def captures_per_payment(stack) -> Counter:
    rows = stack.query(
        "SELECT object_reference FROM payments_providerevent"
        " WHERE type = 'payment.captured' AND status = 'applied'"
    )
    return Counter(reference for (reference,) in rows)


def test_redis_down_while_buyers_place_and_pay(stack, buyer, seller, receiver):
    # given the whole stack up, and the buyer's webhook endpoint on its receiver
    stack.web()
    stack.worker()
    stack.beat()
    endpoint = buyer.post("/webhook-endpoints/", {"url": receiver.url, "topics": ["order.*"]})
    assert endpoint.status_code == 201, endpoint.text

    # when Redis (broker and cache) goes down
    stack.base.redis.stop()

    # then readiness says degraded (still taking traffic) and liveness is fine
    ready = stack.get("/healthz/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert stack.get("/healthz/live").status_code == 200

    # and buyers place, get confirmed and pay, with every request answered normally
    orders = []
    for _ in range(2):
        order_id = place_and_confirm(stack, buyer, seller)
        pay_by_card(buyer, order_id)
        orders.append(order_id)
    listed = buyer.get("/orders/")
    assert listed.status_code == 200 and len(listed.json()["results"]) == 2

    # when Redis comes back
    stack.base.redis.start()

    # then each payment completes, once, and every notification and webhook goes out once
    for order_id in orders:
        wait_for(
            f"order {order_id} to be paid",
            lambda order_id=order_id: order_status(buyer, order_id) == "in_production",
        )
    wait_for("the outbox and webhooks to drain", lambda: everything_sent(stack))
    assert list(captures_per_payment(stack).values()) == [1, 1]
    assert_each_effect_once(stack, receiver)
    assert stack.get("/healthz/ready").json()["status"] == "ok"
