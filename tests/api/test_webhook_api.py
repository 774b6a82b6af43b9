"""Webhook endpoints and deliveries over the API, and the Developers page."""

import json
from datetime import timedelta

import pytest
import time_machine

from accounts.models import ApiKey
from tests.api.factories import WebhookEndpointFactory, make_event
from tests.api.receiver import verify_signature
from tests.factories import BuyerFactory, MediatorFactory, SupplierStaffFactory
from tradeassure.core import clock
from tradeassure.platform.models import WebhookDelivery, WebhookEndpoint
from tradeassure.platform.outbox import outbox_dispatch_due
from tradeassure.platform.webhooks import webhook_deliver_due

pytestmark = pytest.mark.django_db
ENDPOINTS = "/api/v1/webhook-endpoints/"
DELIVERIES = "/api/v1/webhook-deliveries/"


def _post(client, url, data=None, key="k"):
    return client.post(url, data or {}, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_create_shows_the_secret_once_and_lists_hide_it(api_client_for, receiver):
    buyer = BuyerFactory()
    client = api_client_for(buyer)
    # when an endpoint is created
    created = _post(client, ENDPOINTS, {"url": receiver.url, "topics": ["order.*"]})
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    # then the list and detail show only a hint
    listed = client.get(ENDPOINTS).json()["results"]
    assert "secret" not in listed[0]
    assert listed[0]["secret_hint"] == f"…{secret[-4:]}"
    assert secret not in client.get(f"{ENDPOINTS}{listed[0]['id']}/").content.decode()


def test_bad_topics_and_urls_are_400_with_field_errors(api_client_for):
    client = api_client_for(BuyerFactory())
    response = _post(client, ENDPOINTS, {"url": "https://x.example.com", "topics": ["Bad Topic"]})
    assert response.status_code == 400
    assert "topics" in response.json()["errors"]
    response = _post(client, ENDPOINTS, {"url": "ftp://x.example.com"}, key="k2")
    assert response.status_code == 400
    assert "url" in response.json()["errors"]
    assert WebhookEndpoint.objects.count() == 0


def test_private_addresses_are_refused_when_not_allowed(api_client_for, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    response = _post(api_client_for(BuyerFactory()), ENDPOINTS, {"url": "http://127.0.0.1:9/x"})
    assert response.status_code == 400
    assert WebhookEndpoint.objects.count() == 0


def test_other_organisations_cannot_see_or_touch_an_endpoint(api_client_for):
    endpoint = WebhookEndpointFactory(organisation=BuyerFactory().organisation)
    outsider = api_client_for(SupplierStaffFactory())
    url = f"{ENDPOINTS}{endpoint.pk}/"
    assert outsider.get(ENDPOINTS).json()["results"] == []
    assert outsider.get(url).status_code == 404
    assert outsider.patch(url, {"is_active": False}, format="json").status_code == 404
    assert outsider.delete(url).status_code == 404
    assert _post(outsider, f"{url}rotate-secret/").status_code == 404
    assert _post(outsider, f"{url}test/", key="k2").status_code == 404
    endpoint.refresh_from_db()
    assert endpoint.is_active
    assert WebhookDelivery.objects.count() == 0


def test_update_pause_and_delete(api_client_for):
    buyer = BuyerFactory()
    endpoint = WebhookEndpointFactory(organisation=buyer.organisation)
    client = api_client_for(buyer)
    url = f"{ENDPOINTS}{endpoint.pk}/"
    response = client.patch(url, {"is_active": False, "topics": ["dispute.*"]}, format="json")
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert response.json()["topics"] == ["dispute.*"]
    assert client.delete(url).status_code == 204
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()


def test_rotated_secret_signs_with_both_for_24_hours(api_client_for, receiver):
    buyer = BuyerFactory()
    client = api_client_for(buyer)
    created = _post(client, ENDPOINTS, {"url": receiver.url}).json()
    rotated = _post(client, f"{ENDPOINTS}{created['id']}/rotate-secret/", key="rot").json()
    assert rotated["secret"] != created["secret"]
    # a delivery now verifies with the old and the new secret
    _post(client, f"{ENDPOINTS}{created['id']}/test/", key="t1")
    webhook_deliver_due()
    request = receiver.requests[-1]
    assert verify_signature(rotated["secret"], request.headers, request.body)
    assert verify_signature(created["secret"], request.headers, request.body)
    # after 24 hours only the new one signs
    with time_machine.travel(clock.now() + timedelta(hours=25)):
        _post(client, f"{ENDPOINTS}{created['id']}/test/", key="t2")
        webhook_deliver_due()
        request = receiver.requests[-1]
        assert request.headers["TradeAssure-Signature"].count("v1=") == 1
        body = request.body
        headers = request.headers
    # (verify with the original timestamp: signature, not freshness, is what is checked here)
    import hashlib
    import hmac

    expected = hmac.new(
        rotated["secret"].encode(),
        f"{headers['TradeAssure-Timestamp']}.".encode() + body,
        hashlib.sha256,
    ).hexdigest()
    assert headers["TradeAssure-Signature"] == f"v1={expected}"


def test_test_delivery_and_attempt_log_and_redelivery(api_client_for, receiver):
    # given an endpoint whose receiver fails once
    receiver.statuses = [500]
    buyer = BuyerFactory()
    client = api_client_for(buyer)
    endpoint = _post(client, ENDPOINTS, {"url": receiver.url}).json()
    # when a test delivery is sent
    queued = _post(client, f"{ENDPOINTS}{endpoint['id']}/test/", key="test")
    assert queued.status_code == 202
    webhook_deliver_due()
    # then the partner sees the failed attempt
    delivery_id = queued.json()["id"]
    detail = client.get(f"{DELIVERIES}{delivery_id}/").json()
    assert detail["status"] == "pending"
    assert detail["topic"] == "webhook.test"
    assert detail["attempt_log"][0]["response_status"] == 500
    # when the partner asks for redelivery, it goes out now and succeeds
    assert _post(client, f"{DELIVERIES}{delivery_id}/redeliver/", key="re").status_code == 202
    webhook_deliver_due()
    detail = client.get(f"{DELIVERIES}{delivery_id}/").json()
    assert detail["status"] == "succeeded"
    assert [attempt["succeeded"] for attempt in detail["attempt_log"]] == [False, True]
    assert json.loads(receiver.requests[-1].body)["topic"] == "webhook.test"
    # and deliveries can be filtered by endpoint and status
    listed = client.get(f"{DELIVERIES}?endpoint={endpoint['id']}&status=succeeded").json()
    assert [row["id"] for row in listed["results"]] == [delivery_id]


def test_deliveries_are_visible_only_to_the_endpoint_organisation(api_client_for, receiver):
    buyer = BuyerFactory()
    WebhookEndpointFactory(organisation=buyer.organisation, url=receiver.url)
    make_event(audience=[buyer.organisation])
    outbox_dispatch_due()
    delivery = WebhookDelivery.objects.get()
    outsider = api_client_for(BuyerFactory())
    assert outsider.get(DELIVERIES).json()["results"] == []
    assert outsider.get(f"{DELIVERIES}{delivery.pk}/").status_code == 404
    assert _post(outsider, f"{DELIVERIES}{delivery.pk}/redeliver/").status_code == 404
    assert api_client_for(buyer).get(f"{DELIVERIES}{delivery.pk}/").status_code == 200


@pytest.mark.parametrize("rows", [2, 12])
def test_delivery_list_runs_a_constant_number_of_queries(
    rows, api_client_for, django_assert_max_num_queries
):
    buyer = BuyerFactory()
    endpoint = WebhookEndpointFactory(organisation=buyer.organisation)
    for number in range(rows):
        make_event(audience=[buyer.organisation], subject_id=number)
    outbox_dispatch_due()
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == rows
    client = api_client_for(buyer)
    with django_assert_max_num_queries(4):
        assert client.get(DELIVERIES).status_code == 200


# --- Developers page ------------------------------------------------------------------------------
def test_developers_page_creates_a_key_shown_once_and_revokes_it(client):
    buyer = BuyerFactory()
    client.force_login(buyer)
    page = client.get("/developers/")
    assert page.status_code == 200
    assert b"Quick start" in page.content and b"/api/docs/" in page.content
    # when the buyer creates a key acting as purchasing
    response = client.post(
        "/developers/keys/", {"name": "ERP", "team_role": "purchasing"}, follow=True
    )
    api_key = ApiKey.objects.get()
    assert api_key.team_role == "purchasing"
    html = response.content.decode()
    # then the full key is on the page once, and not on the next view
    shown = html.split('id="shown-once-value">')[1].split("<")[0]
    assert shown.startswith(api_key.prefix + "_")
    assert shown not in client.get("/developers/").content.decode()
    # and it can be revoked from the page
    client.post(f"/developers/keys/{api_key.pk}/revoke/")
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None


def test_developers_page_manages_webhook_endpoints(client, receiver):
    buyer = BuyerFactory()
    client.force_login(buyer)
    response = client.post(
        "/developers/webhooks/", {"url": receiver.url, "topics": "order.*, dispute.open"}
    )
    endpoint = WebhookEndpoint.objects.get()
    assert response.url == f"/developers/webhooks/{endpoint.pk}/"
    assert endpoint.topics == ["dispute.open", "order.*"]
    page = client.get(response.url).content.decode()
    assert endpoint.secret in page
    assert endpoint.secret not in client.get(response.url).content.decode()
    client.post(f"/developers/webhooks/{endpoint.pk}/test/")
    webhook_deliver_due()
    page = client.get(f"/developers/webhooks/{endpoint.pk}/").content.decode()
    assert "webhook.test" in page and "Attempt 1" in page
    client.post(f"/developers/webhooks/{endpoint.pk}/pause/")
    endpoint.refresh_from_db()
    assert not endpoint.is_active
    client.post(f"/developers/webhooks/{endpoint.pk}/delete/")
    assert WebhookEndpoint.objects.count() == 0


def test_developers_page_is_for_organisations_only(client):
    assert client.get("/developers/").status_code == 302  # to the login page
    client.force_login(MediatorFactory())
    assert client.get("/developers/").status_code == 403
    assert client.post("/developers/keys/", {"name": "x"}).status_code == 403
    assert ApiKey.objects.count() == 0


def test_developers_page_hides_other_organisations_endpoints(client):
    endpoint = WebhookEndpointFactory(organisation=BuyerFactory().organisation)
    client.force_login(BuyerFactory())
    assert client.get(f"/developers/webhooks/{endpoint.pk}/").status_code == 404
    client.post(f"/developers/webhooks/{endpoint.pk}/delete/")
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
