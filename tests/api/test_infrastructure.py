"""Authentication, errors, throttling, the events feed and notifications over /api/v1/."""

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.models import ApiKey
from tests.api.factories import NotificationFactory, make_event
from tests.factories import BuyerFactory, MediatorFactory, PartnerFactory, SupplierStaffFactory
from tradeassure.platform.api.services import api_key_create, api_key_revoke
from tradeassure.platform.api.throttling import ApiKeyRateThrottle, UserRateThrottle
from tradeassure.platform.models import Notification

pytestmark = pytest.mark.django_db

EVENTS = "/api/v1/events/"


def test_anonymous_request_gets_401_problem_with_www_authenticate():
    # when nobody authenticates
    response = APIClient().get(EVENTS)
    # then 401 as problem+json, with a challenge naming the scheme
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize(
    "header",
    ["Bearer nope", "Bearer ta_0123456789_" + "0" * 64, "Bearer a b", "Bearer"],
)
def test_unknown_or_malformed_key_gets_401(header):
    BuyerFactory()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get(EVENTS)
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_key_is_stored_hashed_shown_once_and_acts_as_its_service_member():
    # given a buyer who creates a key
    buyer = BuyerFactory()
    _, raw_key = api_key_create(actor=buyer, name="ERP")
    # then only a digest and the visible prefix are stored
    stored = ApiKey.objects.get()
    assert raw_key.startswith(stored.prefix + "_")
    assert raw_key.split("_")[-1] not in stored.hashed_secret
    assert raw_key not in str(ApiKey.objects.values().get())
    # when it is used, the API acts as the key's own member of the buyer's organisation
    # (with the key's role), not as the buyer: the buyer's notifications stay theirs
    NotificationFactory(recipient=buyer, title="Yours")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    response = client.get("/api/v1/notifications/")
    assert response.status_code == 200
    assert response.json()["results"] == []
    member = stored.user
    assert member.is_api_service and member.organisation_id == buyer.organisation_id
    assert member.role == buyer.role and member.team_role == "admin"
    assert not member.has_usable_password()
    stored.refresh_from_db()
    assert stored.last_used_at is not None


def test_revoked_key_stops_working_at_once():
    buyer = BuyerFactory()
    api_key, raw_key = api_key_create(actor=buyer, name="ERP")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert client.get(EVENTS).status_code == 200
    api_key_revoke(actor=buyer, api_key_id=api_key.pk)
    assert client.get(EVENTS).status_code == 401


def test_another_organisation_cannot_revoke_a_key():
    buyer, other = BuyerFactory(), BuyerFactory()
    api_key, _ = api_key_create(actor=buyer, name="ERP")
    from tradeassure.core.errors import NotFound

    with pytest.raises(NotFound):
        api_key_revoke(actor=other, api_key_id=api_key.pk)
    api_key.refresh_from_db()
    assert api_key.revoked_at is None


def test_staff_cannot_create_keys():
    from tradeassure.core.errors import NotAllowed

    with pytest.raises(NotAllowed):
        api_key_create(actor=MediatorFactory(), name="x")
    assert ApiKey.objects.count() == 0


def test_session_post_without_csrf_token_is_refused(session_client_for):
    buyer = BuyerFactory()
    client = session_client_for(buyer)
    response = client.post(
        "/api/v1/notifications/read-all/", {}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "not_allowed"


def test_session_get_works_for_the_browser(session_client_for):
    buyer = BuyerFactory()
    NotificationFactory(recipient=buyer)
    response = session_client_for(buyer).get("/api/v1/notifications/")
    assert response.status_code == 200
    assert len(response.json()["results"]) == 1


def test_unknown_api_path_is_a_problem_404(api_client_for):
    response = api_client_for(BuyerFactory()).get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"


def test_throttled_per_key_with_retry_after(api_client_for, monkeypatch):
    # given a limit of 3 requests a minute per key
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "3/min"})
    buyer = BuyerFactory()
    client = api_client_for(buyer)
    statuses = [client.get(EVENTS).status_code for _ in range(4)]
    # then the fourth is refused as problem+json 429 with Retry-After
    assert statuses == [200, 200, 200, 429]
    response = client.get(EVENTS)
    assert response.json()["code"] == "throttled"
    assert int(response["Retry-After"]) > 0
    # and another key of the same user has its own bucket
    assert api_client_for(buyer).get(EVENTS).status_code == 200


def test_throttled_per_user_across_keys(api_client_for, monkeypatch):
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "2/min"})
    buyer = BuyerFactory()
    assert api_client_for(buyer).get(EVENTS).status_code == 200
    assert api_client_for(buyer).get(EVENTS).status_code == 200
    assert api_client_for(buyer).get(EVENTS).status_code == 429
    assert api_client_for(BuyerFactory()).get(EVENTS).status_code == 200


def test_throttles_fail_open_while_the_cache_is_down(api_client_for, settings, caplog):
    # given the throttles' cache (Redis in production) unreachable
    from tests.conftest import closed_port

    buyer = BuyerFactory()
    client = api_client_for(buyer)
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
        }
    }

    # when the partner reads and writes
    read = client.get(EVENTS)
    write = client.post(
        "/api/v1/notifications/read-all/", HTTP_IDEMPOTENCY_KEY="cache-down-1", format="json"
    )

    # then both are served (unthrottled for the outage), and the outage is logged
    assert read.status_code == 200
    assert write.status_code in (200, 204)
    assert "the cache is unavailable" in caplog.text


# --- Events feed ----------------------------------------------------------------------------------
def test_events_feed_shows_only_the_callers_organisation_events(api_client_for):
    # given events for a buyer's organisation, for a supplier, and for both
    buyer, supplier, partner = BuyerFactory(), SupplierStaffFactory(), PartnerFactory()
    mine = make_event(topic="order.placed", audience=[buyer.organisation])
    make_event(topic="order.placed", audience=[supplier.organisation])
    shared = make_event(
        topic="order.confirmed", audience=[buyer.organisation, supplier.organisation]
    )
    # when each lists the feed
    buyer_ids = [row["id"] for row in api_client_for(buyer).get(EVENTS).json()["results"]]
    partner_rows = api_client_for(partner).get(EVENTS).json()["results"]
    # then each sees its own, oldest first
    assert buyer_ids == [mine.pk, shared.pk]
    assert partner_rows == []
    # and the detail of another organisation's event is 404
    assert api_client_for(partner).get(f"{EVENTS}{mine.pk}/").status_code == 404
    detail = api_client_for(buyer).get(f"{EVENTS}{shared.pk}/").json()
    assert detail["topic"] == "order.confirmed"
    assert detail["subject"] == {"type": "order", "id": 1}


def test_events_feed_cursor_pages_and_filters(api_client_for):
    buyer = BuyerFactory()
    events = [make_event(audience=[buyer.organisation], subject_id=n) for n in range(5)]
    make_event(topic="dispute.open", audience=[buyer.organisation])
    client = api_client_for(buyer)
    # when paging two at a time through order events
    seen, url = [], f"{EVENTS}?page_size=2&topic_prefix=order."
    while url:
        body = client.get(url).json()
        seen += [row["id"] for row in body["results"]]
        url = body["next"]
    # then every order event once, in order
    assert seen == [event.pk for event in events]
    assert client.get(f"{EVENTS}?cursor=garbage").status_code == 404


@pytest.mark.parametrize("rows", [2, 12])
def test_events_feed_runs_a_constant_number_of_queries(
    rows, api_client_for, django_assert_max_num_queries
):
    buyer = BuyerFactory()
    for number in range(rows):
        make_event(audience=[buyer.organisation], subject_id=number)
    client = api_client_for(buyer)
    with django_assert_max_num_queries(4):
        assert client.get(EVENTS).status_code == 200


# --- Notifications --------------------------------------------------------------------------------
def _logged_in(user) -> APIClient:
    """Notifications are a person's (an API key's service member is never notified)."""
    client = APIClient()
    client.force_login(user)
    return client


def test_notifications_are_private_and_can_be_marked_read():
    buyer, other = BuyerFactory(), BuyerFactory()
    mine = NotificationFactory(recipient=buyer)
    theirs = NotificationFactory(recipient=other)
    client = _logged_in(buyer)
    assert [row["id"] for row in client.get("/api/v1/notifications/").json()["results"]] == [
        mine.pk
    ]
    assert client.get(f"/api/v1/notifications/{theirs.pk}/").status_code == 404
    # marking another user's notification read is 404 and changes nothing
    response = client.post(
        f"/api/v1/notifications/{theirs.pk}/read/", HTTP_IDEMPOTENCY_KEY="read-theirs"
    )
    assert response.status_code == 404
    assert Notification.objects.get(pk=theirs.pk).read_at is None
    response = client.post(f"/api/v1/notifications/{mine.pk}/read/", HTTP_IDEMPOTENCY_KEY="r1")
    assert response.status_code == 200
    assert response.json()["is_read"] is True
    assert client.get("/api/v1/notifications/?unread=true").json()["results"] == []


def test_read_all_marks_only_the_callers():
    buyer, other = BuyerFactory(), BuyerFactory()
    NotificationFactory.create_batch(3, recipient=buyer)
    NotificationFactory(recipient=other)
    response = _logged_in(buyer).post("/api/v1/notifications/read-all/", HTTP_IDEMPOTENCY_KEY="all")
    assert response.json() == {"marked_read": 3}
    assert Notification.objects.filter(recipient=other, read_at__isnull=True).count() == 1


# --- Schema and docs ------------------------------------------------------------------------------
def test_schema_generates_without_warnings(tmp_path):
    call_command(
        "spectacular", "--file", str(tmp_path / "schema.yml"), "--validate", "--fail-on-warn"
    )
    text = (tmp_path / "schema.yml").read_text()
    assert "Idempotency-Key" in text
    assert "application/problem+json" in text


def test_docs_are_served_offline():
    client = APIClient()
    assert client.get("/api/schema/").status_code == 200
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html
    assert "cdn." not in html and "unpkg" not in html and "jsdelivr" not in html
    assert client.get("/api/docs/redoc/").status_code == 200


def test_every_api_view_handles_idempotency_keys():
    """No /api/v1/ view can skip the Idempotency-Key cycle: each derives from IdempotentMixin."""
    from django.urls import get_resolver

    from tradeassure.platform.api.idempotency import IdempotentMixin

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if hasattr(pattern, "url_patterns"):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                yield prefix + str(pattern.pattern), pattern.callback

    api_views = [
        (route, callback)
        for route, callback in walk(get_resolver().url_patterns)
        if route.startswith("api/v1/") and hasattr(callback, "cls")
    ]
    assert len(api_views) > 30
    assert [
        route for route, callback in api_views if not issubclass(callback.cls, IdempotentMixin)
    ] == []
