"""The catalogue of error codes and event topics: what apps declare, what the schema publishes,
what event_publish and webhook endpoints accept."""

from enum import StrEnum

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from drf_spectacular.generators import SchemaGenerator

from disputes.topics import DisputeTopic
from disputes.transitions import TRANSITIONS as DISPUTE_TRANSITIONS
from orders.topics import OrderTopic
from orders.transitions import TRANSITIONS as ORDER_TRANSITIONS
from payments.error_codes import PaymentErrorCode
from payments.topics import PaymentTopic
from suppliers.topics import SupplierTopic
from tests.api.factories import WebhookEndpointFactory
from tests.factories import BuyerFactory
from tradeassure.core.app_hooks import declared_enums
from tradeassure.core.error_codes import CommonErrorCode
from tradeassure.platform import catalogue
from tradeassure.platform.error_codes import PlatformErrorCode
from tradeassure.platform.events import event_publish
from tradeassure.platform.models import DomainEvent, WebhookEndpoint
from tradeassure.platform.topics import PlatformTopic

ENDPOINTS = "/api/v1/webhook-endpoints/"


# --- What the apps declare -------------------------------------------------------------------------
def test_every_action_of_each_transition_map_has_its_topic():
    # given the actions of the order and dispute maps (a move publishes `<area>.<action>`)
    order_actions = {row.action for row in ORDER_TRANSITIONS}
    dispute_actions = {row.action for row in DISPUTE_TRANSITIONS}
    # then each has its topic in the app's enum and in the catalogue
    for prefix, actions, enum in (
        ("order", order_actions, OrderTopic),
        ("dispute", dispute_actions, DisputeTopic),
    ):
        missing = sorted(f"{prefix}.{a}" for a in actions if f"{prefix}.{a}" not in set(enum))
        assert missing == [], f"add to {enum.__name__}: {missing}"
        assert {f"{prefix}.{a}" for a in actions} <= set(catalogue.event_topics())


def test_the_catalogue_is_the_union_of_what_installed_apps_declare():
    # then the topics are every publishing app's, once each, sorted
    declared = [OrderTopic, DisputeTopic, PaymentTopic, SupplierTopic, PlatformTopic]
    assert set(catalogue.topic_enums()) == set(declared)
    values = [str(topic) for enum in declared for topic in enum]
    assert len(values) == len(set(values)), "a topic is declared by two apps"
    assert catalogue.event_topics() == tuple(sorted(values))
    # and the error codes start with the common ones and include every declared app's
    enums = catalogue.error_code_enums()
    assert enums[0] is CommonErrorCode
    assert {PlatformErrorCode, PaymentErrorCode} <= set(enums)
    assert catalogue.error_codes() == tuple(sorted({str(code) for enum in enums for code in enum}))
    # and an app's enum never spells a common code again (it uses CommonErrorCode's member)
    common = set(CommonErrorCode)
    for enum in enums[1:]:
        assert common.isdisjoint(set(enum)), enum.__name__


def test_every_topic_has_a_wildcard_per_prefix_and_no_bare_star():
    patterns = catalogue.topic_patterns()
    assert "order.*" in patterns and "dispute.*" in patterns and "escrow.*" in patterns
    assert "*" not in catalogue.topic_subscriptions()
    for topic in catalogue.event_topics():
        assert f"{topic.split('.')[0]}.*" in patterns


def test_an_app_declaring_a_missing_or_wrong_enum_fails_loudly(monkeypatch):
    config = apps.get_app_config("payments")

    class Extra(StrEnum):
        ONE = "extra.one"

    # a class is accepted as well as a dotted path
    monkeypatch.setattr(config, "event_topics", Extra, raising=False)
    assert Extra in declared_enums("event_topics")
    # a path that does not import, or that names something else, is refused
    monkeypatch.setattr(config, "event_topics", "payments.no_such_module.Topic", raising=False)
    with pytest.raises(ImproperlyConfigured, match="payments"):
        declared_enums("event_topics")
    monkeypatch.setattr(config, "event_topics", "payments.services.event_publish", raising=False)
    with pytest.raises(ImproperlyConfigured, match="StrEnum"):
        declared_enums("event_topics")


# --- event_publish ---------------------------------------------------------------------------------
@pytest.mark.django_db
def test_event_publish_refuses_an_unknown_topic():
    buyer = BuyerFactory()
    # when a service publishes a topic no app declares (a typo)
    with pytest.raises(ValueError, match=r"order\.shiped"):
        event_publish(
            topic="order.shiped",
            subject_type="order",
            subject_id=1,
            audience=[buyer.organisation_id],
        )
    # then nothing is recorded; a declared topic still publishes
    assert DomainEvent.objects.count() == 0
    event_publish(
        topic=OrderTopic.SHIPPED,
        subject_type="order",
        subject_id=1,
        audience=[buyer.organisation_id],
    )
    assert DomainEvent.objects.get().topic == "order.shipped"


# --- Webhook endpoints -----------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["order.shiped", "ordr.*", "order.placed.*", "*"])
def test_creating_an_endpoint_with_an_unknown_topic_or_pattern_is_400(api_client_for, bad):
    client = api_client_for(BuyerFactory())
    # when an endpoint subscribes to a known topic and an unknown one
    response = client.post(
        ENDPOINTS,
        {"url": "https://hooks.example.com/a", "topics": ["order.*", bad]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k",
    )
    # then it is a validation problem naming the topic, and nothing is stored
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "validation_failed"
    assert any(repr(bad) in message for message in body["errors"]["topics"])
    assert not any("order.*" in message for message in body["errors"]["topics"])
    assert WebhookEndpoint.objects.count() == 0


@pytest.mark.django_db
def test_updating_an_endpoint_with_an_unknown_topic_is_400_and_changes_nothing(api_client_for):
    buyer = BuyerFactory()
    endpoint = WebhookEndpointFactory(organisation=buyer.organisation, topics=["order.*"])
    client = api_client_for(buyer)
    # when the topics are replaced by a known pattern and an unknown topic
    response = client.patch(
        f"{ENDPOINTS}{endpoint.pk}/",
        {"topics": ["dispute.*", "dispute.opened"], "is_active": False},
        format="json",
    )
    # then it is refused, naming the topic, and the endpoint is as it was
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_failed"
    assert body["errors"] == {"topics": ["Unknown topic: 'dispute.opened'."]}
    endpoint.refresh_from_db()
    assert endpoint.topics == ["order.*"]
    assert endpoint.is_active is True


@pytest.mark.django_db
def test_every_topic_and_pattern_of_the_catalogue_can_be_subscribed(api_client_for):
    client = api_client_for(BuyerFactory())
    everything = list(catalogue.topic_subscriptions())
    response = client.post(
        ENDPOINTS,
        {"url": "https://hooks.example.com/a", "topics": everything[:50]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k",
    )
    assert response.status_code == 201, response.json()
    endpoint = WebhookEndpoint.objects.get()
    response = client.patch(
        f"{ENDPOINTS}{endpoint.pk}/", {"topics": everything[50:]}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["topics"] == everything[50:]


# --- The OpenAPI schema ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def _ref(schema: dict, prop: dict) -> dict:
    """The component a property points at (directly or through `allOf`)."""
    ref = prop.get("$ref") or prop["allOf"][0]["$ref"]
    return schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]


def test_the_schema_enums_are_the_catalogues(schema):
    components = schema["components"]["schemas"]
    # then the problem's code lists every error code, sorted, with a description
    code = _ref(schema, components["Problem"]["properties"]["code"])
    assert code["enum"] == list(catalogue.error_codes()) == sorted(code["enum"])
    assert code["description"]
    # and events and deliveries carry an event topic
    for component in ("Event", "WebhookDelivery", "WebhookDeliveryDetail"):
        topic = _ref(schema, components[component]["properties"]["topic"])
        assert topic["enum"] == list(catalogue.event_topics())
    # and an endpoint's topics (read, create, update) are topics or wildcard patterns
    for component in (
        "WebhookEndpoint",
        "WebhookEndpointWithSecret",
        "WebhookEndpointCreateRequest",
        "PatchedWebhookEndpointUpdateRequest",
    ):
        topics = components[component]["properties"]["topics"]
        assert topics["type"] == "array"
        subscription = _ref(schema, topics["items"])
        assert subscription["enum"] == list(catalogue.topic_subscriptions())
        assert "order.*" in subscription["enum"] and "order.placed" in subscription["enum"]
