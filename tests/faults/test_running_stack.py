"""Faults on a running production-profile stack: web (gunicorn), Celery workers and beats as
separate processes, on the test's own PostgreSQL cluster and Redis server, which the tests stop,
restart and kill. What must hold: no request fails because Redis is down, no payment or
notification is lost, nothing happens twice, and the stack recovers without a restart.

Each wait is bounded by harness.WAIT_SECONDS (it polls for an outcome, never asserts a duration).
"""

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from tests.faults.harness import wait_for

pytestmark = pytest.mark.faults

CARD = "4242 4242 4242 4242"
# Every email queued: a one-email row, or each email of a batched row (a sweep's batch writes
# its emails as `{"emails": [...]}`); a row split off a batch after a failure (it carries the
# `message_id` it had there) is already counted in its batch.
EMAILS_QUEUED = (
    "SELECT e->>'to', e->>'subject' FROM tradeassure_outboxmessage m CROSS JOIN LATERAL"
    " jsonb_array_elements(CASE WHEN m.payload ? 'emails' THEN m.payload->'emails'"
    " ELSE jsonb_build_array(m.payload) END) AS e"
    " WHERE m.channel = 'email' AND NOT m.payload ? 'message_id'"
)


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
    emails = stack.query(EMAILS_QUEUED)
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
        payment_id = pay_by_card(buyer, order_id)
        # the card is handed over (a second submission cannot charge it again) and the charge
        # is not lost, only waiting for the broker
        assert buyer.get(f"/payments/{payment_id}/").json()["status"] == "submitted"
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


def place(stack, buyer) -> int:
    placed = buyer.post(
        "/orders/", {"supplier_id": stack.base.seed["supplier_id"], "terms": terms()}
    )
    assert placed.status_code == 201, placed.text
    return placed.json()["id"]


def expirations(stack, order_ids: list[int]) -> Counter:
    """How many times each order left pending confirmation (its confirmation timer fired)."""
    rows = stack.query(
        "SELECT order_id FROM orders_orderevent"
        " WHERE from_status = 'pending_confirmation' AND order_id = ANY(%s)",
        order_ids,
    )
    return Counter(order_id for (order_id,) in rows)


DAY = 24 * 3600


def test_worker_killed_in_the_middle_of_a_sweep_finishes_the_work_once(stack, buyer):
    # given five orders the supplier never confirmed (a one-day window), placed through the web
    stack.extra_env["TA_SUPPLIER_CONFIRMATION_DAYS"] = "1"
    stack.web()
    order_ids = [place(stack, buyer) for _ in range(5)]
    # and a worker that sees the window closed, whose sweep will wait in the middle of its batch:
    # it claims and moves the due orders in one transaction, then locks the supplier's row to
    # record them, which someone holds
    stack.clock_offset_seconds = DAY + 3600
    worker = stack.worker()
    holder = stack.base.pg.connect(stack.database)
    holder.autocommit = False
    with holder.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM suppliers_supplier WHERE id = %s FOR UPDATE",
            [stack.base.seed["supplier_id"]],
        )

    # when the sweep runs and is in the middle of its batch
    stack.send_task("orders.sweep_confirmation_timeouts")
    wait_for(
        "the sweep to wait on the supplier's row",
        lambda: stack.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
            stack.database,
        ),
    )
    # nothing it did is visible yet: the batch commits whole or not at all
    assert expirations(stack, order_ids) == Counter()

    # and the worker is SIGKILLed there, then the lock goes away
    worker.kill()
    holder.rollback()
    holder.close()

    # then the batch in hand rolled back whole: no order expired, none half-way
    assert expirations(stack, order_ids) == Counter()
    assert stack.scalar(
        "SELECT count(*) FROM orders_order WHERE id = ANY(%s) AND status = 'pending_confirmation'",
        order_ids,
    ) == len(order_ids)

    # when a worker is back and the sweep runs again (as beat does every minute)
    stack.worker("worker-2")
    stack.send_task("orders.sweep_confirmation_timeouts")
    stack.send_task("orders.sweep_confirmation_timeouts")

    # then every order expired exactly once
    wait_for(
        "every order to expire",
        lambda: set(expirations(stack, order_ids)) == set(order_ids),
    )
    wait_for("the outbox to drain", lambda: everything_sent(stack))
    assert expirations(stack, order_ids) == Counter(order_ids)


def test_two_beats_after_a_day_of_downtime_catch_up_once(stack, buyer, receiver):
    # given orders with a one-day confirmation window, and the buyer's webhook endpoint
    stack.extra_env["TA_SUPPLIER_CONFIRMATION_DAYS"] = "1"
    web = stack.web()
    endpoint = buyer.post("/webhook-endpoints/", {"url": receiver.url, "topics": ["order.*"]})
    assert endpoint.status_code == 201, endpoint.text
    order_ids = [place(stack, buyer) for _ in range(3)]
    # when the whole stack is down for a day (no worker or beat ever ran), and comes back with
    # two beats (a deploy that left the old one running) and two workers
    web.kill()
    stack.clock_offset_seconds = DAY + 3600
    stack.web()
    stack.worker("worker-1")
    stack.worker("worker-2")
    stack.beat("beat-1")
    stack.beat("beat-2")

    # then every missed timer fires, once, and its notifications and webhooks go out once
    wait_for(
        "the missed timers to fire",
        lambda: set(expirations(stack, order_ids)) == set(order_ids),
        timeout=180,
    )
    wait_for("the outbox and webhooks to drain", lambda: everything_sent(stack), timeout=180)
    assert expirations(stack, order_ids) == Counter(order_ids)
    assert_each_effect_once(stack, receiver)
    for order_id in order_ids:
        assert order_status(buyer, order_id) != "pending_confirmation"


def test_worker_killed_in_the_middle_of_an_outbox_dispatch_delivers_each_effect_once(
    stack, buyer, seller, receiver
):
    # given orders placed and confirmed while no worker runs: their emails and webhooks wait
    stack.web()
    endpoint = buyer.post("/webhook-endpoints/", {"url": receiver.url, "topics": ["order.*"]})
    assert endpoint.status_code == 201, endpoint.text
    for _ in range(2):
        place_and_confirm(stack, buyer, seller)
    emails_due = stack.scalar(
        "SELECT count(*) FROM tradeassure_outboxmessage WHERE channel = 'email'"
    )
    assert emails_due >= 2
    # and a mail server that hangs on the next message
    stall = stack.mail_file.with_name(stack.mail_file.name + ".stall")
    stalled = stack.mail_file.with_name(stack.mail_file.name + ".stalled")
    stall.touch()

    # when a worker starts dispatching and is SIGKILLed while handing an email over
    worker = stack.worker()
    wait_for("the dispatch to hang on an email", stalled.exists)
    worker.kill()
    stall.unlink()
    in_flight = json.loads(stalled.read_text())

    # and a new worker and beat take over
    stack.worker("worker-2")
    stack.beat()

    # then everything is delivered: each webhook once, and no email twice — every email but the
    # one in flight at the crash exactly once (that one at most once: it was never accepted)
    wait_for("the outbox and webhooks to drain", lambda: everything_sent(stack), timeout=180)
    delivery_ids = {
        str(row[0]) for row in stack.query("SELECT id FROM tradeassure_webhookdelivery")
    }
    received = Counter(receiver.delivery_ids())
    assert delivery_ids and set(received) == delivery_ids
    assert all(count == 1 for count in received.values()), received
    expected = Counter(stack.query(EMAILS_QUEUED))
    sent = Counter((mail["to"][0], mail["subject"]) for mail in stack.mails())
    assert all(count == 1 for count in sent.values()), sent
    assert expected - sent in (Counter(), Counter([(in_flight["to"][0], in_flight["subject"])]))
    assert not sent - expected


def test_beat_started_while_postgresql_is_down_waits_and_then_schedules(stack):
    # given PostgreSQL down
    stack.base.pg.stop()
    try:
        # when beat starts
        beat = stack.beat()
        wait_for("beat to notice", lambda: "retrying in" in beat.log())
        # then it waits instead of exiting
        assert beat.alive()
    finally:
        stack.base.pg.start()

    # and once PostgreSQL is back it sends its periodic tasks
    wait_for("beat to send a due task", lambda: "Sending due task" in beat.log(), timeout=180)
    assert beat.alive()


def test_postgresql_restart_under_load_fails_cleanly_and_recovers(stack, buyer):
    # given the stack under a steady load of reads and writes
    import threading

    stack.web()
    worker = stack.worker()
    beat = stack.beat()
    answers: list[tuple[int, str, str]] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            for call in (
                lambda: buyer.get("/orders/"),
                lambda: buyer.post(
                    "/orders/", {"supplier_id": stack.base.seed["supplier_id"], "terms": terms()}
                ),
            ):
                try:
                    response = call()
                except Exception as error:  # a connection reset by gunicorn would be a failure
                    answers.append((0, "", repr(error)))
                    continue
                answers.append(
                    (response.status_code, response.headers.get("Content-Type", ""), response.text)
                )

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    try:
        wait_for("some load", lambda: len(answers) >= 10)
        # when PostgreSQL restarts under it
        stack.base.pg.stop()
        seen = len(answers)
        wait_for("requests during the outage", lambda: len(answers) >= seen + 4)
        stack.base.pg.start()
        # then the app recovers by itself: ten successes in a row
        recovered_from = len(answers)

        def recovered() -> bool:
            tail = answers[recovered_from:][-10:]
            return len(tail) == 10 and all(status in (200, 201) for status, _, _ in tail)

        wait_for("the app to recover", recovered)
    finally:
        stop.set()
        thread.join(60)

    # and every failure was clean: an error page or problem+json, never a traceback or a reset
    failures = [answer for answer in answers if answer[0] not in (200, 201)]
    assert failures, "the outage was not observed"
    for status, content_type, body in failures:
        assert status in (500, 503), (status, body[:300])
        assert content_type.startswith(("application/problem+json", "text/html")), content_type
        assert "Traceback" not in body
    # and the worker and beat rode it out (no restart): everything the load caused is delivered
    wait_for("the outbox to drain", lambda: everything_sent(stack), timeout=180)
    assert worker.alive() and beat.alive()
