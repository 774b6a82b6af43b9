"""PostgreSQL: `event_publish` writes the event, its audience and its outbox rows in one
statement, with the same rows the three INSERTs wrote."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import BuyerFactory
from tradeassure.platform.events import event_publish
from tradeassure.platform.models import DomainEvent, OutboxMessage

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_an_event_with_its_audience_and_outbox_rows_is_one_statement(settings):
    # given two event channels and two organisations to tell
    settings.OUTBOX_EVENT_CHANNELS = ["webhook", "recording"]
    buyer, supplier = BuyerFactory(), BuyerFactory()

    # when an event is published
    with CaptureQueriesContext(connection) as queries:
        event = event_publish(
            topic="escrow.released",
            subject_type="escrow",
            subject_id=42,
            audience=[supplier.organisation_id, buyer.organisation_id, None],
            payload={"amount": "10.00", "currency": "USD"},
        )

    # then one statement wrote the event, its audience and one outbox row per channel
    assert len(queries.captured_queries) == 1
    stored = DomainEvent.objects.get()
    assert stored == event
    assert (stored.topic, stored.subject_type, stored.subject_id, stored.payload) == (
        "escrow.released",
        "escrow",
        42,
        {"amount": "10.00", "currency": "USD"},
    )
    assert set(stored.audience.values_list("id", flat=True)) == {
        buyer.organisation_id,
        supplier.organisation_id,
    }
    rows = OutboxMessage.objects.order_by("channel")
    assert [(row.channel, row.payload, row.status) for row in rows] == [
        ("recording", {"event_id": event.pk}, OutboxMessage.Status.PENDING),
        ("webhook", {"event_id": event.pk}, OutboxMessage.Status.PENDING),
    ]
    assert all(row.give_up_at > row.next_attempt_at for row in rows)
