"""The outbox: side effects after commit, retried with backoff, given up on with a staff alert."""

import threading
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connection

from tests.factories import BuyerFactory
from tradeassure.core import clock
from tradeassure.platform.events import event_publish, notify, outbox_enqueue
from tradeassure.platform.models import DomainEvent, Notification, OutboxMessage, SystemAlert
from tradeassure.platform.outbox import outbox_dispatch_due, retry_delay

pytestmark = pytest.mark.django_db

DELIVERED: list[dict] = []


def failing_handler(payload: dict) -> None:
    raise ConnectionError("partner endpoint refused the connection")


def recording_handler(payload: dict) -> None:
    DELIVERED.append(payload)


@pytest.fixture
def test_channels(settings):
    DELIVERED.clear()
    settings.OUTBOX_HANDLERS = {
        "failing": "tests.test_outbox.failing_handler",
        "recording": "tests.test_outbox.recording_handler",
    }
    yield
    DELIVERED.clear()


def test_email_is_sent_by_the_dispatcher():
    # given an email queued in the outbox
    message = outbox_enqueue(
        channel="email", payload={"to": "a@example.com", "subject": "Hi", "body": "Body"}
    )

    # when the dispatcher runs
    handled = outbox_dispatch_due()

    # then the email went out once and the message is marked sent
    assert handled == 1
    assert [(m.to, m.subject, m.body) for m in mail.outbox] == [(["a@example.com"], "Hi", "Body")]
    message.refresh_from_db()
    assert message.status == OutboxMessage.Status.SENT
    assert message.attempts == 1
    assert message.sent_at is not None

    # and a second run sends nothing more
    assert outbox_dispatch_due() == 0
    assert len(mail.outbox) == 1


def test_notify_creates_a_bell_notification_and_emails_after_commit(
    django_capture_on_commit_callbacks,
):
    # given an active and an inactive user
    active, inactive = BuyerFactory(), BuyerFactory(is_active=False)

    # when they are notified and the transaction commits (which kicks the eager dispatcher)
    with django_capture_on_commit_callbacks(execute=True):
        notify(users=[active, inactive, None], title="Order confirmed", body="Go", url="/orders/1/")

    # then only the active user gets the bell entry and one email with the full link
    assert list(Notification.objects.values_list("recipient", "title")) == [
        (active.pk, "Order confirmed")
    ]
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [active.email]
    assert mail.outbox[0].subject == "[TradeAssure] Order confirmed"
    assert mail.outbox[0].body.endswith("/orders/1/")
    assert OutboxMessage.objects.get().status == OutboxMessage.Status.SENT


def test_nothing_is_kicked_before_commit(django_capture_on_commit_callbacks):
    # given a message enqueued in a transaction that has not committed
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        outbox_enqueue(channel="email", payload={"to": "a@example.com", "subject": "s", "body": ""})

    # then nothing was sent yet; the dispatcher is only kicked on commit
    assert len(callbacks) == 1
    assert mail.outbox == []
    assert OutboxMessage.objects.get().status == OutboxMessage.Status.PENDING


def test_event_publish_records_the_audience_and_fans_out_to_event_channels(settings, test_channels):
    # given a channel that listens to every domain event
    settings.OUTBOX_EVENT_CHANNELS = ["recording"]
    buyer, supplier = BuyerFactory(), BuyerFactory()

    # when an event is published for two organisations
    event = event_publish(
        topic="order.confirmed",
        subject_type="order",
        subject_id=7,
        audience=[buyer.organisation_id, supplier.organisation_id, None],
        payload={"total": "10.00"},
    )
    outbox_dispatch_due()

    # then the event lists exactly its audience and the channel received it
    assert DomainEvent.objects.get() == event
    assert set(event.audience.values_list("id", flat=True)) == {
        buyer.organisation_id,
        supplier.organisation_id,
    }
    assert [{"event_id": event.pk}] == DELIVERED


def test_failed_delivery_is_retried_with_growing_backoff(test_channels):
    # given a message whose endpoint is down
    start = clock.now()
    with time_machine.travel(start, tick=False):
        message = outbox_enqueue(channel="failing", payload={"n": 1})

        # when the dispatcher tries it
        assert outbox_dispatch_due() == 1

        # then it stays pending, with the error and a retry 30 s later
        message.refresh_from_db()
        assert message.status == OutboxMessage.Status.PENDING
        assert message.attempts == 1
        assert "ConnectionError" in message.last_error
        assert message.next_attempt_at == start + timedelta(seconds=30)
        # and it is not tried again before then
        assert outbox_dispatch_due() == 0

    with time_machine.travel(start + timedelta(seconds=31), tick=False):
        assert outbox_dispatch_due() == 1
        message.refresh_from_db()
        assert message.attempts == 2
        assert message.next_attempt_at == start + timedelta(seconds=31 + 60)

    assert SystemAlert.objects.count() == 0


def test_backoff_doubles_and_is_capped_at_six_hours():
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert retry_delay(30) == timedelta(hours=6)


def test_delivery_is_given_up_after_three_days_with_a_staff_alert(test_channels):
    # given a message that has failed until its give-up time
    start = clock.now()
    with time_machine.travel(start, tick=False):
        message = outbox_enqueue(channel="failing", payload={"n": 1})

    # when the dispatcher tries it after the give-up time
    with time_machine.travel(start + timedelta(days=3, seconds=1), tick=False):
        assert outbox_dispatch_due() == 1

    # then it is marked failed, never tried again, and staff see an alert
    message.refresh_from_db()
    assert message.status == OutboxMessage.Status.FAILED
    alert = SystemAlert.objects.get()
    assert alert.source == "outbox"
    assert "ConnectionError" in alert.message
    with time_machine.travel(start + timedelta(days=10), tick=False):
        assert outbox_dispatch_due() == 0
    message.refresh_from_db()
    assert message.attempts == 1


def test_one_failing_message_does_not_block_the_others(test_channels):
    outbox_enqueue(channel="failing", payload={"n": 1})
    outbox_enqueue(channel="recording", payload={"n": 2})

    assert outbox_dispatch_due() == 2

    assert DELIVERED == [{"n": 2}]
    assert list(OutboxMessage.objects.values_list("status", flat=True)) == [
        OutboxMessage.Status.PENDING,
        OutboxMessage.Status.SENT,
    ]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_dispatchers_deliver_each_message_exactly_once(test_channels):
    # given 40 due messages (written directly: in autocommit the eager kick would send them)
    now = clock.now()
    OutboxMessage.objects.bulk_create(
        OutboxMessage(
            channel="recording",
            payload={"n": n},
            next_attempt_at=now,
            give_up_at=now + timedelta(days=3),
            created_at=now,
        )
        for n in range(40)
    )

    # when four dispatchers sweep at the same time (each thread has its own connection)
    barrier = threading.Barrier(4)
    handled: list[int] = []

    def sweep() -> None:
        try:
            barrier.wait()
            handled.append(outbox_dispatch_due(batch_size=100))
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then every message was delivered once: SKIP LOCKED kept the sweeps apart
    assert sum(handled) == 40
    assert sorted(payload["n"] for payload in DELIVERED) == list(range(40))
    assert OutboxMessage.objects.filter(status=OutboxMessage.Status.SENT).count() == 40
    assert set(OutboxMessage.objects.values_list("attempts", flat=True)) == {1}


# --- batches and the dispatcher kick ------------------------------------------------------------


def test_rows_queued_in_a_batch_are_written_together_when_it_ends(
    django_capture_on_commit_callbacks,
):
    from django.db import transaction
    from django.test.utils import CaptureQueriesContext

    from tradeassure.platform.events import _kick_dispatcher, outbox_batch

    # given a transaction that queues two side effects inside a batch
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        with CaptureQueriesContext(connection) as captured, outbox_batch():
            first = outbox_enqueue(channel="email", payload={"to": "a@example.com"})
            outbox_enqueue(channel="email", payload={"to": "b@example.com"})
            # then nothing is written while the batch runs
            assert first.pk is None
            assert not OutboxMessage.objects.exists()
        # and both rows are written by one INSERT when it ends
        inserts = [q for q in captured if q["sql"].startswith('INSERT INTO "tradeassure_outbox')]
        assert len(inserts) == 1
        assert sorted(m.payload["to"] for m in OutboxMessage.objects.all()) == [
            "a@example.com",
            "b@example.com",
        ]
    # and the dispatcher is kicked once for the transaction
    assert [c for c in callbacks if c is _kick_dispatcher] == [_kick_dispatcher]


def test_a_batch_that_raises_writes_nothing():
    from tradeassure.platform.events import outbox_batch

    # given a batch whose block fails after queueing a message
    with pytest.raises(RuntimeError), outbox_batch():
        outbox_enqueue(channel="email", payload={"to": "a@example.com"})
        raise RuntimeError("the service failed")
    # then no row was written
    assert OutboxMessage.objects.count() == 0


def test_many_messages_in_one_transaction_kick_the_dispatcher_once(
    django_capture_on_commit_callbacks,
):
    from django.db import transaction

    from tradeassure.platform.events import _kick_dispatcher

    # given one transaction queueing three messages one by one (no batch)
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        for n in range(3):
            outbox_enqueue(channel="email", payload={"to": f"{n}@example.com"})
    # then all three rows exist and one kick is sent after commit
    assert OutboxMessage.objects.count() == 3
    assert [c for c in callbacks if c is _kick_dispatcher] == [_kick_dispatcher]
