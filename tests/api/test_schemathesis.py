"""Schemathesis against the live OpenAPI schema: generated requests to every operation, over HTTP,
on PostgreSQL. No 5xx, and every response matches the schema (status code, content type, body).

Bounded by SCHEMATHESIS_MAX_EXAMPLES per operation (default 12) so it runs in a few minutes.
"""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from orders.models import OrderStatus
from tests.api.factories import NotificationFactory, WebhookEndpointFactory, make_event
from tests.orders.factories import order_in, supplier_user_of
from tradeassure.platform.api.services import api_key_create
from tradeassure.platform.api.throttling import (
    AnonymousRateThrottle,
    ApiKeyRateThrottle,
    UserRateThrottle,
)

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "12"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_every_operation_conforms_to_the_live_schema(live_server, monkeypatch):
    # given real data to find (an order with a shipment, payments, events, a webhook endpoint)
    for throttle, scope in (
        (ApiKeyRateThrottle, "api_key"),
        (UserRateThrottle, "user"),
        (AnonymousRateThrottle, "anon"),
    ):
        monkeypatch.setattr(throttle, "THROTTLE_RATES", {scope: "100000/min"})
    order = order_in(OrderStatus.SHIPPED)
    NotificationFactory(recipient=order.buyer)
    WebhookEndpointFactory(organisation=order.buyer_organisation)
    make_event(audience=[order.buyer_organisation])
    supplier_user_of(order)
    _, raw_key = api_key_create(actor=order.buyer, name="schemathesis")
    headers = {"Authorization": f"Bearer {raw_key}"}
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 40
    failures: list[str] = []

    # when schemathesis sends generated requests to every operation
    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            case.call_and_validate(base_url=live_server.url, headers=headers, checks=CHECKS)

        try:
            run()
        except Exception as failure:  # collect all operations' failures, then report them
            failures.append(f"{operation.label}: {failure}"[:3000])

    # then no operation answered 5xx or outside its schema
    assert failures == [], "\n\n".join(failures)
