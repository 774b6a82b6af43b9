"""Factories for the partner API's own rows."""

import factory

from tests.factories import BuyerFactory
from tradeassure.core import clock
from tradeassure.platform.models import DomainEvent, Notification, WebhookEndpoint


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookEndpoint

    organisation = factory.LazyAttribute(lambda o: BuyerFactory().organisation)
    url = "https://hooks.example.com/tradeassure"
    secret = factory.Sequence(lambda n: f"whsec_test_secret_{n:04d}")
    topics = factory.LazyFunction(list)
    created_at = factory.LazyFunction(clock.now)


class NotificationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Notification

    recipient = factory.SubFactory(BuyerFactory)
    title = factory.Sequence(lambda n: f"Something happened {n}")
    created_at = factory.LazyFunction(clock.now)


def make_event(*, topic="order.confirmed", audience=(), subject_id=1, payload=None) -> DomainEvent:
    """A domain event published the way services publish it (outbox row included)."""
    from tradeassure.platform.events import event_publish

    return event_publish(
        topic=topic,
        subject_type=topic.split(".")[0],
        subject_id=subject_id,
        audience=[org.pk for org in audience],
        payload=payload or {"status": "awaiting_payment"},
    )
