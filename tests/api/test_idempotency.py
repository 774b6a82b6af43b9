"""Idempotency-Key on POST: replay, mismatch, release on 400, concurrent in-flight (PostgreSQL)."""

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from rest_framework.test import APIClient

from tests.factories import BuyerFactory
from tradeassure.core import clock
from tradeassure.platform.api import services
from tradeassure.platform.api.services import api_key_create
from tradeassure.platform.models import IdempotencyRecord, WebhookEndpoint

URL = "/api/v1/webhook-endpoints/"
BODY = {"url": "https://hooks.example.com/a", "topics": ["order.*"]}


def _client(user) -> APIClient:
    _, raw_key = api_key_create(actor=user, name="idempotency")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


@pytest.mark.django_db
def test_post_without_key_is_refused_and_changes_nothing():
    response = _client(BuyerFactory()).post(URL, BODY, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_required"
    assert "Idempotency-Key" in response.json()["errors"]
    assert WebhookEndpoint.objects.count() == 0


@pytest.mark.django_db
def test_same_key_same_body_replays_the_first_response_without_acting_again():
    client = _client(BuyerFactory())
    # when the same request is sent twice with one key
    first = client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="create-1")
    second = client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="create-1")
    # then the second is the first's response, replayed, and one endpoint exists
    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert WebhookEndpoint.objects.count() == 1


@pytest.mark.django_db
def test_same_key_other_body_is_422_and_changes_nothing():
    client = _client(BuyerFactory())
    client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="create-1")
    response = client.post(
        URL,
        {**BODY, "url": "https://hooks.example.com/b"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="create-1",
    )
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert list(WebhookEndpoint.objects.values_list("url", flat=True)) == [BODY["url"]]


@pytest.mark.django_db
def test_keys_are_per_caller():
    # the same key from two organisations are two different operations
    first = _client(BuyerFactory()).post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k")
    second = _client(BuyerFactory()).post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert first.status_code == second.status_code == 201
    assert "Idempotent-Replayed" not in second
    assert WebhookEndpoint.objects.count() == 2


@pytest.mark.django_db
def test_invalid_input_is_not_stored_so_the_key_can_be_retried_fixed():
    client = _client(BuyerFactory())
    bad = client.post(URL, {"url": "not a url"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert bad.status_code == 400
    assert bad.json()["errors"]["url"]
    assert IdempotencyRecord.objects.count() == 0
    good = client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert good.status_code == 201


@pytest.mark.django_db
def test_a_key_expires_after_24_hours():
    client = _client(BuyerFactory())
    client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k")
    with time_machine.travel(clock.now() + timedelta(hours=24, seconds=1)):
        again = client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again
    assert WebhookEndpoint.objects.count() == 2


@pytest.mark.django_db
def test_unexpected_error_releases_the_claim(monkeypatch):
    client = _client(BuyerFactory())
    client.raise_request_exception = False

    def explode(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "webhook_endpoint_create", explode)
    response = client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "internal_error"
    assert IdempotencyRecord.objects.count() == 0


@pytest.mark.parametrize("key", ["x" * 256, "has space", "tab\tkey"])
@pytest.mark.django_db
def test_malformed_key_is_400(key):
    response = _client(BuyerFactory()).post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_invalid"
    assert WebhookEndpoint.objects.count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_same_key_while_the_first_is_in_flight_is_409_then_replays(monkeypatch):
    # given a request that is held inside the service until released
    buyer = BuyerFactory()
    _, raw_key = api_key_create(actor=buyer, name="concurrency")
    entered, release = threading.Event(), threading.Event()
    real_create = services.webhook_endpoint_create

    def slow_create(**kwargs):
        entered.set()
        assert release.wait(20)
        return real_create(**kwargs)

    monkeypatch.setattr(services, "webhook_endpoint_create", slow_create)
    results: dict[str, object] = {}

    def send(name):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        try:
            results[name] = client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="same")
        finally:
            connection.close()

    first = threading.Thread(target=send, args=("first",))
    first.start()
    assert entered.wait(20)
    # when five more requests with the same key arrive while the first is in flight
    others = [threading.Thread(target=send, args=(f"other{n}",)) for n in range(5)]
    for thread in others:
        thread.start()
    for thread in others:
        thread.join()
    release.set()
    first.join()
    # then they all got 409 in-flight, the first 201, and exactly one endpoint exists
    assert [results[f"other{n}"].status_code for n in range(5)] == [409] * 5
    assert {results[f"other{n}"].json()["code"] for n in range(5)} == {
        "idempotency_request_in_flight"
    }
    assert results["first"].status_code == 201
    assert WebhookEndpoint.objects.count() == 1
    # and a retry now replays the first response
    send("retry")
    assert results["retry"].status_code == 201
    assert results["retry"].content == results["first"].content
    assert WebhookEndpoint.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_simultaneous_first_requests_with_one_key_act_once():
    # given 8 threads that send the same request with the same key at the same instant
    buyer = BuyerFactory()
    _, raw_key = api_key_create(actor=buyer, name="race")
    barrier = threading.Barrier(8)
    statuses = []

    def send():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        barrier.wait()
        try:
            statuses.append(
                client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="race").status_code
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then exactly one endpoint was created; every answer is the 201 (first or replay) or 409
    assert WebhookEndpoint.objects.count() == 1
    assert statuses.count(201) >= 1
    assert set(statuses) <= {201, 409}
    assert IdempotencyRecord.objects.count() == 1


@pytest.mark.django_db
def test_expired_records_are_purged_and_fresh_ones_kept():
    from tradeassure.platform.tasks import purge_idempotency_records

    client = _client(BuyerFactory())
    client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="old")
    with time_machine.travel(clock.now() + timedelta(hours=23)):
        client.post(
            URL,
            {**BODY, "url": "https://hooks.example.com/new"},
            format="json",
            HTTP_IDEMPOTENCY_KEY="new",
        )
    with time_machine.travel(clock.now() + timedelta(hours=24, seconds=1)):
        assert purge_idempotency_records() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
