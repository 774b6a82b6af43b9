"""Webhook delivery against a real HTTP receiver on 127.0.0.1."""

import json
import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import pytest
import time_machine
from django.db import connection

from tests.api.factories import WebhookEndpointFactory, make_event
from tests.api.receiver import verify_signature
from tests.factories import BuyerFactory, SupplierStaffFactory
from tradeassure.core import clock
from tradeassure.platform.models import OutboxMessage, WebhookAttempt, WebhookDelivery
from tradeassure.platform.outbox import outbox_dispatch_due
from tradeassure.platform.webhooks import LEASE, _claim_next_due, webhook_deliver_due


@pytest.fixture
def no_broker_kicks(monkeypatch):
    """After commit nothing runs in-process: only the workers the test starts deliver."""
    monkeypatch.setattr("tradeassure.platform.events._kick_dispatcher", lambda: None)
    monkeypatch.setattr("tradeassure.platform.webhooks.kick_delivery", lambda: None)


def _publish_and_fan_out(**kwargs):
    event = make_event(**kwargs)
    outbox_dispatch_due()
    return event


@pytest.mark.django_db
def test_event_is_delivered_once_with_a_signature_that_verifies(receiver):
    # given a buyer organisation with an endpoint on the local receiver
    buyer = BuyerFactory()
    endpoint = WebhookEndpointFactory(organisation=buyer.organisation, url=receiver.url)
    # when an event for that organisation is published and the workers run
    event = _publish_and_fan_out(topic="order.confirmed", audience=[buyer.organisation])
    handled = webhook_deliver_due()
    # then the receiver got exactly one request, signed with the endpoint's secret
    assert handled == 1
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert verify_signature(endpoint.secret, request.headers, request.body)
    assert not verify_signature("whsec_wrong", request.headers, request.body)
    body = json.loads(request.body)
    assert body["id"] == event.pk
    assert body["topic"] == "order.confirmed"
    assert body["subject"] == {"type": "order", "id": 1}
    assert body["data"] == {"status": "awaiting_payment"}
    assert request.headers["TradeAssure-Event"] == "order.confirmed"
    delivery = WebhookDelivery.objects.get()
    assert request.headers["TradeAssure-Delivery"] == str(delivery.pk)
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED
    assert delivery.attempts == 1
    assert list(delivery.attempt_log.values_list("succeeded", "response_status")) == [(True, 200)]
    assert OutboxMessage.objects.get(channel="webhook").status == OutboxMessage.Status.SENT


@pytest.mark.django_db
def test_tampered_body_does_not_verify(receiver):
    buyer = BuyerFactory()
    endpoint = WebhookEndpointFactory(organisation=buyer.organisation, url=receiver.url)
    _publish_and_fan_out(audience=[buyer.organisation])
    webhook_deliver_due()
    request = receiver.requests[0]
    assert not verify_signature(endpoint.secret, request.headers, request.body + b" ")


@pytest.mark.django_db
def test_failed_delivery_is_retried_with_backoff_until_it_succeeds(receiver):
    # given a receiver that fails twice (500, then 503) before answering 200
    receiver.statuses = [500, 503]
    buyer = BuyerFactory()
    WebhookEndpointFactory(organisation=buyer.organisation, url=receiver.url)
    _publish_and_fan_out(audience=[buyer.organisation])
    start = clock.now()
    with time_machine.travel(start, tick=False) as traveller:
        # when the worker runs: first attempt fails and the next is scheduled 30 s later
        webhook_deliver_due()
        delivery = WebhookDelivery.objects.get()
        assert delivery.status == WebhookDelivery.Status.PENDING
        assert delivery.next_attempt_at == start + timedelta(seconds=30)
        assert delivery.last_response_status == 500
        # and running again before then attempts nothing
        assert webhook_deliver_due() == 0
        # when 30 s pass: the second attempt fails, the third is due 60 s later
        traveller.shift(timedelta(seconds=30))
        webhook_deliver_due()
        delivery.refresh_from_db()
        assert delivery.next_attempt_at == start + timedelta(seconds=90)
        traveller.shift(timedelta(seconds=60))
        webhook_deliver_due()
    # then the third attempt succeeded, and every attempt is on record
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED
    assert len(receiver.requests) == 3
    assert len(set(receiver.delivery_ids())) == 1
    assert list(delivery.attempt_log.values_list("number", "response_status", "succeeded")) == [
        (1, 500, False),
        (2, 503, False),
        (3, 200, True),
    ]


@pytest.mark.django_db
def test_delivery_gives_up_after_three_days(receiver):
    receiver.statuses = [500] * 100
    buyer = BuyerFactory()
    WebhookEndpointFactory(organisation=buyer.organisation, url=receiver.url)
    start = clock.now()
    with time_machine.travel(start, tick=False) as traveller:
        _publish_and_fan_out(audience=[buyer.organisation])
        for _ in range(40):
            webhook_deliver_due()
            delivery = WebhookDelivery.objects.get()
            if delivery.status == WebhookDelivery.Status.FAILED:
                break
            traveller.move_to(delivery.next_attempt_at)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert delivery.give_up_at == start + timedelta(days=3)
    last_attempt = delivery.attempt_log.order_by("number").last()
    assert last_attempt.started_at >= start + timedelta(days=3)
    # the delays between attempts grew and never exceeded 6 hours
    starts = list(delivery.attempt_log.order_by("number").values_list("started_at", flat=True))
    gaps = [later - earlier for earlier, later in pairwise(starts)]
    assert gaps == sorted(gaps)
    assert max(gaps) <= timedelta(hours=6)


@pytest.mark.django_db
def test_only_subscribed_endpoints_of_the_audience_receive_the_event(receiver):
    # given endpoints of the audience (one wildcard, one for another topic) and of an outsider
    buyer, outsider = BuyerFactory(), SupplierStaffFactory()
    wanted = WebhookEndpointFactory(
        organisation=buyer.organisation, url=receiver.url, topics=["order.*"]
    )
    WebhookEndpointFactory(
        organisation=buyer.organisation, url=receiver.url, topics=["dispute.opened"]
    )
    WebhookEndpointFactory(organisation=outsider.organisation, url=receiver.url)
    # when an order event for the buyer is published and fanned out twice
    event = _publish_and_fan_out(topic="order.shipped", audience=[buyer.organisation])
    from tradeassure.platform.webhooks import webhook_fan_out

    webhook_fan_out({"event_id": event.pk})
    webhook_deliver_due()
    # then exactly one delivery, to the subscribed endpoint of the audience
    assert list(WebhookDelivery.objects.values_list("endpoint_id", flat=True)) == [wanted.pk]
    assert len(receiver.requests) == 1


@pytest.mark.django_db
def test_paused_endpoint_waits_and_resumes(receiver):
    buyer = BuyerFactory()
    endpoint = WebhookEndpointFactory(
        organisation=buyer.organisation, url=receiver.url, is_active=True
    )
    _publish_and_fan_out(audience=[buyer.organisation])
    endpoint.is_active = False
    endpoint.save()
    assert webhook_deliver_due() == 0
    assert receiver.requests == []
    endpoint.is_active = True
    endpoint.save()
    assert webhook_deliver_due() == 1
    assert len(receiver.requests) == 1


@pytest.mark.django_db
def test_a_claim_left_by_a_dead_worker_is_retried_after_its_lease_once(receiver):
    # given a delivery claimed by a worker that died before sending anything
    buyer = BuyerFactory()
    WebhookEndpointFactory(organisation=buyer.organisation, url=receiver.url)
    _publish_and_fan_out(audience=[buyer.organisation])
    start = clock.now()
    with time_machine.travel(start, tick=False) as traveller:
        assert _claim_next_due() is not None
        # when another worker runs while the lease holds: nothing is sent
        assert webhook_deliver_due() == 0
        # when the lease has expired: it is sent, exactly once
        traveller.shift(LEASE + timedelta(seconds=1))
        assert webhook_deliver_due() == 1
        assert webhook_deliver_due() == 0
    assert len(receiver.requests) == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED
    assert list(delivery.attempt_log.values_list("number", "succeeded")) == [(1, False), (2, True)]
    assert "stopped" in delivery.attempt_log.get(number=1).error


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_deliver_each_event_exactly_once(receiver, no_broker_kicks):
    # given 12 events for an organisation with two endpoints, and a slow receiver
    receiver.delay = 0.05
    buyer = BuyerFactory()
    WebhookEndpointFactory(organisation=buyer.organisation, url=receiver.url)
    WebhookEndpointFactory(organisation=buyer.organisation, url=receiver.url)
    for number in range(12):
        make_event(audience=[buyer.organisation], subject_id=number)
    # when four outbox dispatchers and four delivery workers run at the same time
    errors = []

    def work(target):
        try:
            target()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(outbox_dispatch_due,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    threads = [threading.Thread(target=work, args=(webhook_deliver_due,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then each (endpoint, event) was delivered exactly once
    assert errors == []
    assert WebhookDelivery.objects.count() == 24
    assert len(receiver.requests) == 24
    assert len(set(receiver.delivery_ids())) == 24
    assert WebhookAttempt.objects.count() == 24
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"succeeded"}


WORKER_SCRIPT = """
import django
django.setup()
from tradeassure.platform.webhooks import webhook_deliver_due
webhook_deliver_due()
"""


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_delivery_is_retried_without_a_duplicate_for_the_receiver(
    receiver, no_broker_kicks
):
    # given a delivery and a receiver that holds the first request open
    receiver.release = threading.Event()
    buyer = BuyerFactory()
    WebhookEndpointFactory(organisation=buyer.organisation, url=receiver.url)
    _publish_and_fan_out(audience=[buyer.organisation])
    # when a real worker process starts delivering and is killed (SIGKILL) mid-request
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://{USER}@{HOST}:{PORT}/{NAME}".format(
            **{key: connection.settings_dict[key] or "" for key in ("USER", "HOST", "PORT", "NAME")}
        ),
        "DJANGO_SETTINGS_MODULE": "tradeassure.settings",
    }
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER_SCRIPT],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
    )
    try:
        assert receiver.first_request_arrived.wait(30), "the worker never sent the request"
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    receiver.release.set()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.DELIVERING
    # and the worker is restarted: within the lease nothing is sent again
    assert webhook_deliver_due() == 0
    # after the lease, the delivery is retried once, with the same delivery id
    with time_machine.travel(clock.now() + LEASE + timedelta(seconds=1), tick=False):
        assert webhook_deliver_due() == 1
        assert webhook_deliver_due() == 0
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED
    # then the receiver, keeping the delivery ids it has seen, processes the event exactly once
    assert receiver.delivery_ids() == [str(delivery.pk), str(delivery.pk)]
    processed = {
        request.headers["TradeAssure-Delivery"]: json.loads(request.body)
        for request in receiver.requests
    }
    assert len(processed) == 1
    assert list(delivery.attempt_log.values_list("number", "succeeded")) == [(1, False), (2, True)]


@pytest.mark.django_db
def test_deliveries_are_made_concurrently_by_the_pool(receiver, no_broker_kicks, settings):
    # given one event for four endpoints, and a receiver that answers none of them until all
    # four requests are in flight at once
    settings.WEBHOOK_DELIVERY_CONCURRENCY = 4
    receiver.release = threading.Event()
    buyer = BuyerFactory()
    for _ in range(4):
        WebhookEndpointFactory(organisation=buyer.organisation, url=receiver.url)
    _publish_and_fan_out(audience=[buyer.organisation])
    assert WebhookDelivery.objects.count() == 4

    def release_when_all_arrived() -> None:
        while len(receiver.requests) < 4 and not receiver.release.is_set():
            threading.Event().wait(0.01)
        receiver.release.set()

    watcher = threading.Thread(target=release_when_all_arrived, daemon=True)
    watcher.start()
    # when one delivery worker runs
    try:
        handled = webhook_deliver_due()
    finally:
        receiver.release.set()
        watcher.join(5)

    # then the four requests were in flight together (one by one, the first would have timed
    # out waiting for the other three) and each was recorded once, as succeeded
    assert handled == 4
    assert len(receiver.requests) == 4
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"succeeded"}
    assert WebhookAttempt.objects.filter(succeeded=True).count() == 4


@pytest.mark.django_db
def test_a_batch_of_events_is_one_outbox_row_and_fans_out_to_each_subscribed_endpoint_once(
    receiver, django_capture_on_commit_callbacks
):
    from tradeassure.platform.events import EventSpec, events_publish_many
    from tradeassure.platform.webhooks import webhook_fan_out

    # given a buyer subscribed to order events, a supplier subscribed to disputes only, and an
    # organisation with no endpoint
    buyer, staff, outsider = BuyerFactory(), SupplierStaffFactory(), BuyerFactory()
    to_buyer = WebhookEndpointFactory(
        organisation=buyer.organisation, url=receiver.url, topics=["order.*"]
    )
    WebhookEndpointFactory(organisation=staff.organisation, url=receiver.url, topics=["dispute.*"])
    audience = (buyer.organisation_id, staff.organisation_id, outsider.organisation_id)
    # when a sweep's batch publishes three events
    with django_capture_on_commit_callbacks(execute=False):
        ids = events_publish_many(
            [
                EventSpec(
                    topic="order.cancelled",
                    subject_type="order",
                    subject_id=n,
                    audience=audience,
                    payload={"n": n},
                )
                for n in range(3)
            ]
        )
    # then they are one webhook outbox row, not one per event
    row = OutboxMessage.objects.get(channel="webhook")
    assert row.payload == {"event_ids": ids}
    # when it is dispatched, and fanned out again (a repeated outbox row)
    outbox_dispatch_due()
    webhook_fan_out(row.payload)
    # then each event has one delivery, to the one endpoint subscribed to it
    deliveries = WebhookDelivery.objects.order_by("event_id")
    assert [(d.endpoint_id, d.event_id) for d in deliveries] == [(to_buyer.pk, pk) for pk in ids]
    assert [d.payload["data"] for d in deliveries] == [{"n": n} for n in range(3)]
    # and each is delivered once
    assert webhook_deliver_due() == 3
    assert len(receiver.requests) == 3
