"""The API contract at its edges: every answer under /api/ is problem+json, never a 500 or an
HTML page (unknown paths and methods, CSRF, out-of-range offsets, oversized and deeply nested
bodies, long query strings, bad query values), and the Idempotency-Key compares parsed bodies."""

import json

import pytest
from django.test import Client

from orders.models import Order, OrderStatus
from tests.api.factories import NotificationFactory, WebhookEndpointFactory, make_event
from tests.disputes.factories import PDF_BYTES, open_dispute, parties_for
from tests.factories import BuyerFactory
from tests.orders.factories import order_in
from tests.orders.factories import trade_assured_supplier as assured_supplier
from tests.suppliers.factories import supplier_staff_for
from tradeassure.platform.models import IdempotencyRecord, Notification, WebhookEndpoint

pytestmark = pytest.mark.django_db
PROBLEM = "application/problem+json"


def _is_problem(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == PROBLEM, response.content[:500]
    body = json.loads(response.content)
    assert body["status"] == status
    if code is not None:
        assert body["code"] == code
    return body


# --- item 10: unknown paths and methods ---------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/orders"),  # no trailing slash
        ("post", "/api/v1/orders/0.5/confirm/"),
        ("put", "/api/v1/orders/1/"),
        ("patch", "/api/v1/no-such-thing/"),
        ("delete", "/api/v1/orders/1/confirm"),
        ("post", "/api/nope/"),
        ("get", "/api/nope"),
    ],
)
def test_writes_and_reads_to_unknown_api_paths_are_problem_404s_not_csrf_pages(
    api_client_for, method, path
):
    # given an authenticated partner (and a browser session, whose CSRF check used to answer)
    client = api_client_for(BuyerFactory())
    session = Client(enforce_csrf_checks=True)
    session.force_login(BuyerFactory())
    for each, statuses in ((client, (404, 405)), (session, (403, 404, 405))):
        # when they write to a path that names no API resource
        if method == "get":
            response = each.get(path)
        else:
            response = getattr(each, method)(path, "{}", content_type="application/json")
        # then 404 problem+json (405 where the path exists but not the method; a session
        # without its CSRF token may get 403 where the path exists), never an HTML page
        assert response.status_code in statuses, (path, response.status_code)
        _is_problem(response, response.status_code)


def test_unknown_api_path_without_a_slash_says_so(api_client_for):
    response = api_client_for(BuyerFactory()).post(
        "/api/v1/orders", {}, format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert "end with a slash" in _is_problem(response, 404, "not_found")["detail"]


@pytest.mark.parametrize(
    "path",
    ["/api/v1/events/", "/api/v1/notifications/", "/api/v1/payments/", "/api/v1/suppliers/"],
)
def test_post_to_a_read_only_collection_is_405_not_a_missing_idempotency_key(api_client_for, path):
    # when a partner POSTs (without an Idempotency-Key) where only GET exists
    response = api_client_for(BuyerFactory()).post(path, {}, format="json")
    # then 405 method_not_allowed, and nothing is claimed
    _is_problem(response, 405, "method_not_allowed")
    assert IdempotencyRecord.objects.count() == 0


def test_delete_on_a_read_only_resource_is_405(api_client_for):
    buyer = BuyerFactory()
    notification = NotificationFactory(recipient=buyer)
    response = api_client_for(buyer).delete(f"/api/v1/notifications/{notification.pk}/")
    _is_problem(response, 405, "method_not_allowed")
    assert Notification.objects.filter(pk=notification.pk).exists()


def test_csrf_failure_under_api_is_problem_403():
    # given a browser session posting to a Django (non-DRF) view under /api/ without a token
    session = Client(enforce_csrf_checks=True)
    session.force_login(BuyerFactory())
    response = session.post("/api/schema/", {})
    # then 403 problem+json (or 405: the schema is GET-only), never the HTML CSRF page
    assert response.status_code in (403, 405)
    _is_problem(response, response.status_code)


def test_csrf_failure_view_answers_problem_json_under_api(rf):
    from tradeassure.platform.api.errors import csrf_failure

    response = csrf_failure(rf.post("/api/v1/orders/"), reason="CSRF cookie not set.")
    _is_problem(response, 403, "csrf_failed")
    page = csrf_failure(rf.post("/orders/"), reason="CSRF cookie not set.")
    assert page.status_code == 403
    assert page["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("path", ["/api/v1/orders/%0A/", "/api/v1/%0A", "/api/v1/orders/1%0A/"])
def test_a_path_with_a_newline_is_a_problem_404(api_client_for, path):
    response = api_client_for(BuyerFactory()).get(path)
    assert _is_problem(response, 404)["code"].endswith("not_found")


# --- item 11: date-time filters with an offset PostgreSQL cannot store --------------------------
@pytest.mark.postgres
@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/api/v1/orders/", "placed_after"),
        ("/api/v1/orders/", "placed_before"),
        ("/api/v1/orders/", "updated_after"),
        ("/api/v1/payments/", "created_after"),
        ("/api/v1/payments/", "created_before"),
        ("/api/v1/events/", "occurred_after"),
        ("/api/v1/events/", "occurred_before"),
        ("/api/v1/disputes/", "opened_after"),
        ("/api/v1/disputes/", "opened_before"),
    ],
)
@pytest.mark.parametrize("offset", ["+16:30", "-23:59", "+15:59"])
def test_date_time_filters_with_any_valid_offset_are_compared_in_utc(
    api_client_for, path, param, offset
):
    # given a buyer with an order (its events, payments) placed now
    order = order_in(OrderStatus.PENDING_CONFIRMATION)
    client = api_client_for(order.buyer)
    # when a filter names an instant with an offset beyond PostgreSQL's ±15:59
    response = client.get(path, {param: f"2026-01-01T00:00:00{offset}"})
    # then the instant is compared in UTC: 200, never a 500 DataError
    assert response.status_code == 200, response.content[:300]


def test_date_time_filter_normalises_the_instant_to_utc(api_client_for):
    # given an order placed at a known instant
    order = order_in(OrderStatus.PENDING_CONFIRMATION)
    client = api_client_for(order.buyer)
    placed = order.placed_at
    # when the buyer filters one minute after it, written with a +16:30 offset
    from datetime import timedelta, timezone

    after = (placed + timedelta(minutes=1)).astimezone(timezone(timedelta(hours=16, minutes=30)))
    before = (placed - timedelta(minutes=1)).astimezone(timezone(timedelta(hours=16, minutes=30)))
    # then the comparison is of the same instant
    assert (
        client.get("/api/v1/orders/", {"placed_after": after.isoformat()}).json()["results"] == []
    )
    found = client.get("/api/v1/orders/", {"placed_after": before.isoformat()}).json()
    assert [row["id"] for row in found["results"]] == [order.pk]


def test_date_time_filter_that_is_not_a_date_is_400(api_client_for):
    response = api_client_for(BuyerFactory()).get(
        "/api/v1/orders/", {"placed_after": "2026-01-01T00:00:00+24:00"}
    )
    assert "placed_after" in _is_problem(response, 400, "validation_failed")["errors"]


# --- item 12: oversized and deeply nested bodies -------------------------------------------------
def test_json_body_over_the_limit_is_413_and_changes_nothing(api_client_for, settings):
    # given a 4 KB limit for request bodies
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    client = api_client_for(BuyerFactory())
    body = {"url": "https://hooks.example.com/a", "topics": ["order.*"], "pad": "x" * 5000}
    # when a JSON body over it is posted with an Idempotency-Key
    response = client.post(
        "/api/v1/webhook-endpoints/", body, format="json", HTTP_IDEMPOTENCY_KEY="big"
    )
    # then 413 problem+json, no endpoint, no claim kept
    _is_problem(response, 413, "request_too_large")
    assert WebhookEndpoint.objects.count() == 0
    assert IdempotencyRecord.objects.count() == 0


def test_json_patch_over_the_limit_is_413_and_changes_nothing(api_client_for, settings):
    # given a webhook endpoint and a 4 KB body limit
    buyer = BuyerFactory()
    endpoint = WebhookEndpointFactory(organisation=buyer.organisation, description="before")
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    # when a PATCH (no Idempotency-Key involved) sends a JSON body over it
    response = api_client_for(buyer).patch(
        f"/api/v1/webhook-endpoints/{endpoint.pk}/",
        {"description": "x" * 5000},
        format="json",
    )
    # then 413 problem+json and the endpoint is unchanged
    _is_problem(response, 413, "request_too_large")
    endpoint.refresh_from_db()
    assert endpoint.description == "before"


@pytest.mark.parametrize("depth", [5_000, 100_000])
def test_deeply_nested_json_is_400_not_a_recursion_error(api_client_for, depth):
    client = api_client_for(BuyerFactory())
    body = "[" * depth + "]" * depth
    response = client.post(
        "/api/v1/webhook-endpoints/",
        body,
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=f"deep-{depth}",
    )
    _is_problem(response, 400, "malformed_request")
    assert WebhookEndpoint.objects.count() == 0
    assert IdempotencyRecord.objects.count() == 0


def test_deeply_nested_json_object_in_a_field_is_400(api_client_for):
    client = api_client_for(BuyerFactory())
    nested = '{"a":' * 3000 + "1" + "}" * 3000
    body = '{"url": "https://hooks.example.com/a", "topics": ' + nested + "}"
    response = client.post(
        "/api/v1/webhook-endpoints/",
        body,
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="deep-field",
    )
    _is_problem(response, 400)
    assert WebhookEndpoint.objects.count() == 0


# --- item 14: small ones -----------------------------------------------------------------------
def _multipart_with_file_name(name: str) -> tuple[bytes, str]:
    """A hand-made body: the test client would drop the folder part itself."""
    boundary = "b0undary"
    body = (
        (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="files"; filename="{name}"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        ).encode()
        + PDF_BYTES
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


FOLDER_NAMES = ["photos/report.pdf", "..\\report.pdf", "a/../../report.pdf", "C:\\tmp\\x.pdf"]


@pytest.mark.parametrize("name", FOLDER_NAMES)
@pytest.mark.parametrize("caller", ["api_key", "session", "page"])
def test_evidence_file_name_with_a_folder_part_is_refused(api_client_for, name, caller):
    # given an open dispute with one piece of evidence
    parties = parties_for("delivered")
    dispute_id = open_dispute(parties).pk
    body, content_type = _multipart_with_file_name(name)
    # when evidence is uploaded under a name with a folder part: by API key, by the browser
    # session over the API (its CSRF check parses the body first), or on the dispute page
    csrf = {}
    if caller == "api_key":
        client, url = api_client_for(parties.buyer), f"/api/v1/disputes/{dispute_id}/evidence/"
    else:
        client = Client(enforce_csrf_checks=True)
        client.force_login(parties.buyer)
        client.cookies["csrftoken"] = "a" * 32
        csrf = {"HTTP_X_CSRFTOKEN": "a" * 32}
        url = (
            f"/api/v1/disputes/{dispute_id}/evidence/"
            if caller == "session"
            else f"/disputes/{dispute_id}/evidence/"
        )
    response = client.generic(
        "POST", url, body, content_type=content_type, HTTP_IDEMPOTENCY_KEY=f"ev-{name}", **csrf
    )
    # then it is refused, saying why, and nothing is stored
    if caller == "page":
        assert response.status_code == 400
        assert "folder" in response.content.decode()
    else:
        assert "folder" in json.dumps(_is_problem(response, 400))
    from disputes.models import Evidence

    assert Evidence.objects.filter(dispute_id=dispute_id).count() == 1


def test_a_plain_file_name_is_still_accepted_on_every_path(api_client_for):
    parties = parties_for("delivered")
    dispute_id = open_dispute(parties).pk
    body, content_type = _multipart_with_file_name("report.pdf")
    response = api_client_for(parties.buyer).generic(
        "POST",
        f"/api/v1/disputes/{dispute_id}/evidence/",
        body,
        content_type=content_type,
        HTTP_IDEMPOTENCY_KEY="plain",
    )
    assert response.status_code == 201, response.content
    assert response.json()[0]["original_name"] == "report.pdf"


def test_line_item_specifications_have_a_length_limit(api_client_for):
    from tests.api.test_orders_api import _terms

    # given a buyer and a Trade Assurance supplier
    supplier = assured_supplier()
    supplier_staff_for(supplier)
    client = api_client_for(BuyerFactory())
    terms = _terms()
    terms["items"][0]["specifications"] = "x" * 20_001
    # when an order is placed with a 20,001-character specification
    response = client.post(
        "/api/v1/orders/",
        {"supplier_id": supplier.pk, "terms": terms},
        format="json",
        HTTP_IDEMPOTENCY_KEY="specs",
    )
    # then 400 naming the field; no order
    body = _is_problem(response, 400, "validation_failed")
    assert "terms.items.0.specifications" in body["errors"]
    assert Order.objects.count() == 0


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/api/v1/events/", {"page_size": "abc"}),
        ("/api/v1/events/", {"page_size": "0"}),
        ("/api/v1/events/", {"page_size": "-3"}),
        ("/api/v1/events/", {"page_size": "101"}),
        ("/api/v1/orders/", {"page_size": "1.5"}),
        ("/api/v1/events/", {"subject_id": "abc"}),
        ("/api/v1/events/", {"subject_id": "1.5"}),
        ("/api/v1/events/", {"subject_id": "1e400"}),
        ("/api/v1/notifications/", {"unread": "maybe"}),
        ("/api/v1/suppliers/", {"trade_assurance": "perhaps"}),
        ("/api/v1/orders/", {"is_late": "sometimes"}),
    ],
)
def test_invalid_query_values_are_400_not_ignored(api_client_for, path, query):
    buyer = BuyerFactory()
    make_event(audience=[buyer.organisation])
    response = api_client_for(buyer).get(path, query)
    body = _is_problem(response, 400, "validation_failed")
    assert next(iter(query)) in body["errors"]


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/api/v1/events/", {"page_size": "100"}),
        ("/api/v1/events/", {"subject_id": "7"}),
        ("/api/v1/notifications/", {"unread": "true"}),
        ("/api/v1/notifications/", {"unread": "false"}),
        ("/api/v1/suppliers/", {"trade_assurance": "true"}),
    ],
)
def test_valid_query_values_still_work(api_client_for, path, query):
    response = api_client_for(BuyerFactory()).get(path, query)
    assert response.status_code == 200, response.content[:300]


def test_page_size_limits_the_page(api_client_for):
    buyer = BuyerFactory()
    for n in range(3):
        make_event(audience=[buyer.organisation], subject_id=n + 1)
    body = api_client_for(buyer).get("/api/v1/events/", {"page_size": "2"}).json()
    assert len(body["results"]) == 2
    assert body["next_cursor"]


def test_very_long_query_string_is_problem_414(api_client_for):
    response = api_client_for(BuyerFactory()).get("/api/v1/events/", {"topic": "x" * 10_000})
    _is_problem(response, 414, "request_uri_too_long")


def test_very_long_query_string_outside_the_api_is_a_plain_414():
    response = Client().get("/", {"q": "x" * 10_000})
    assert response.status_code == 414


def test_same_json_with_keys_in_another_order_replays(api_client_for):
    client = api_client_for(BuyerFactory())
    first = client.post(
        "/api/v1/webhook-endpoints/",
        '{"url": "https://hooks.example.com/a", "topics": ["order.*"], "description": "x"}',
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="same",
    )
    second = client.post(
        "/api/v1/webhook-endpoints/",
        '{ "description":"x","topics":[ "order.*" ],\n "url":"https://hooks.example.com/a"}',
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="same",
    )
    assert first.status_code == 201, first.content
    assert second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert WebhookEndpoint.objects.count() == 1


@pytest.mark.parametrize(
    "other",
    [
        '{"url": "https://hooks.example.com/a", "topics": ["order.*"], "description": "y"}',
        '{"url": "https://hooks.example.com/a", "topics": ["order.*"]}',
        '{"url": "https://hooks.example.com/a", "topics": ["order.*"], "description": "x", "n": 1}',
        '{"url": "https://hooks.example.com/a", "topics": ["order.*"], "description": ["x"]}',
    ],
)
def test_a_different_parsed_body_is_still_a_reused_key(api_client_for, other):
    client = api_client_for(BuyerFactory())
    client.post(
        "/api/v1/webhook-endpoints/",
        '{"url": "https://hooks.example.com/a", "topics": ["order.*"], "description": "x"}',
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="same",
    )
    response = client.post(
        "/api/v1/webhook-endpoints/",
        other,
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="same",
    )
    _is_problem(response, 422, "idempotency_key_reused")
    assert WebhookEndpoint.objects.count() == 1


def test_numbers_differ_from_strings_in_the_fingerprint():
    from tradeassure.platform.api.idempotency import canonical_json

    assert canonical_json(b'{"a": 1, "b": [1.50, "x"]}') == canonical_json(
        b'{"b":[1.50,"x"],"a":1}'
    )
    assert canonical_json(b'{"a": 1}') != canonical_json(b'{"a": "1"}')
    assert canonical_json(b'{"a": 1.5}') != canonical_json(b'{"a": "1.5"}')
    assert canonical_json(b"not json") is None


# --- item 13: the schema says what the server does ---------------------------------------------
@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from drf_spectacular.generators import SchemaGenerator

    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def test_schema_evidence_upload_answers_a_bare_array_without_list_parameters(schema):
    operation = schema["paths"]["/api/v1/disputes/{id}/evidence/"]["post"]
    names = {parameter["name"] for parameter in operation.get("parameters", [])}
    assert names == {"id", "Idempotency-Key"}
    body = operation["responses"]["201"]["content"]["application/json"]["schema"]
    assert body["type"] == "array"
    assert body["items"] == {"$ref": "#/components/schemas/Evidence"}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/orders/{id}/documents/{document_id}/",
        "/api/v1/disputes/{id}/evidence/{evidence_id}/",
    ],
)
def test_schema_downloads_declare_one_binary_type(schema, path):
    ok = schema["paths"][path]["get"]["responses"]["200"]["content"]
    assert list(ok) == ["application/octet-stream"]
    assert ok["application/octet-stream"]["schema"] == {"type": "string", "format": "binary"}


def test_download_is_served_as_the_declared_type(api_client_for):
    parties = parties_for("delivered")
    document = parties.order.shipment.documents.first()
    response = api_client_for(parties.buyer).get(
        f"/api/v1/orders/{parties.order.pk}/documents/{document.pk}/"
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment")


def test_schema_dispute_outcome_is_nullable_and_null_until_resolved(schema, api_client_for):
    outcome = schema["components"]["schemas"]["Dispute"]["properties"]["outcome"]
    variants = [_resolve(schema, variant) for variant in outcome["oneOf"]]
    assert {"enum": [None]} in [{"enum": v.get("enum")} for v in variants]
    parties = parties_for("delivered")
    dispute = open_dispute(parties)
    body = api_client_for(parties.buyer).get(f"/api/v1/disputes/{dispute.pk}/").json()
    assert body["outcome"] is None


def test_schema_event_data_is_an_object_and_pages_carry_their_cursor(schema):
    components = schema["components"]["schemas"]
    for name in ("Event", "OrderEvent", "DisputeEvent"):
        assert components[name]["properties"]["data"]["type"] == "object", name
    for name in ("PaginatedEventList", "PaginatedOrderList", "PaginatedDisputeList"):
        properties = components[name]["properties"]
        assert properties["next_cursor"]["nullable"] is True, name
        assert "next_cursor" in components[name]["required"]


def test_schema_dispute_create_takes_json_or_multipart(schema):
    body = schema["paths"]["/api/v1/disputes/"]["post"]["requestBody"]
    assert set(body["content"]) == {"application/json", "multipart/form-data"}
