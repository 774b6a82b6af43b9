"""The outbox: side effects after commit, retried with backoff, given up on with a staff alert."""

import os
import signal
import smtplib
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.core import mail
from django.core.mail.backends import locmem
from django.db import DatabaseError, connection, transaction
from django.db.models import Count

from tests.factories import BuyerFactory
from tradeassure.core import clock
from tradeassure.platform.events import event_publish, notify, outbox_enqueue
from tradeassure.platform.models import DomainEvent, Notification, OutboxMessage, SystemAlert
from tradeassure.platform.outbox import (
    EMAIL_CHUNK,
    message_id_for,
    outbox_claim,
    outbox_dispatch_due,
    queued_emails,
    retry_delay,
)
from tradeassure.platform.outbox import LEASE as OUTBOX_LEASE
from tradeassure.platform.tasks import dispatch_outbox

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


# --- batches, leases, crashes -------------------------------------------------------------------
def _emails(count: int, *, to=lambda n: f"user{n}@example.com") -> list[OutboxMessage]:
    """Due emails written directly (in autocommit the eager kick would send them at once)."""
    now = clock.now()
    return OutboxMessage.objects.bulk_create(
        OutboxMessage(
            channel="email",
            payload={"to": to(n), "subject": f"S{n}", "body": "B"},
            next_attempt_at=now,
            give_up_at=now + timedelta(days=3),
            created_at=now,
        )
        for n in range(count)
    )


def _message_ids(messages) -> list[str]:
    return [message.extra_headers["Message-ID"] for message in messages]


class WorkerKilled(BaseException):
    """What SIGKILL is to the dispatcher: nothing after it runs (not an Exception)."""


class CrashingBackend(locmem.EmailBackend):
    """Hands over `crash_after` messages, then the worker dies in the middle of the next one."""

    crash_after = 3

    def send_messages(self, messages):
        if len(mail.outbox) >= self.crash_after:
            raise WorkerKilled
        return super().send_messages(messages)


class RefusingBackend(locmem.EmailBackend):
    def send_messages(self, messages):
        if any("refused" in address for message in messages for address in message.to):
            raise smtplib.SMTPRecipientsRefused({"refused@example.com": (550, b"No such user")})
        return super().send_messages(messages)


LOCKED_WHILE_SENDING: list[bool] = []


class LockProbingBackend(locmem.EmailBackend):
    """While a message is handed over, asks from another connection whether its row is locked."""

    def send_messages(self, messages):
        outbox_id = int(messages[0].extra_headers["Message-ID"].split(".")[1])

        def probe() -> None:
            try:
                with transaction.atomic():
                    OutboxMessage.objects.select_for_update(nowait=True).get(pk=outbox_id)
                LOCKED_WHILE_SENDING.append(False)
            except DatabaseError:
                LOCKED_WHILE_SENDING.append(True)
            finally:
                connection.close()

        thread = threading.Thread(target=probe)
        thread.start()
        thread.join()
        return super().send_messages(messages)


def test_emails_go_out_in_batches_over_one_connection_with_a_stable_message_id(
    django_assert_max_num_queries,
):
    # given 120 due emails
    messages = _emails(120)

    # when the dispatcher runs: one claim (savepoint, two selects, update, release), per
    # chunk of 25 a hand-over and a mark, and the claim that finds nothing more
    with django_assert_max_num_queries(5 + 5 * 2 + 4):
        assert outbox_dispatch_due() == 120

    # then each went out once, with its own Message-ID, and every row is sent
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        f"user{n}@example.com" for n in range(120)
    )
    assert sorted(_message_ids(mail.outbox)) == sorted(message_id_for(m) for m in messages)
    assert len(set(_message_ids(mail.outbox))) == 120
    assert set(OutboxMessage.objects.values_list("status", "attempts")) == {("sent", 1)}
    assert not OutboxMessage.objects.filter(handed_over_at__isnull=True).exists()


def test_a_refused_address_fails_only_its_own_row_with_backoff(settings):
    # given three emails, the middle one to an address the mail server refuses
    settings.EMAIL_BACKEND = "tests.test_outbox.RefusingBackend"
    addresses = ["a@example.com", "refused@example.com", "b@example.com"]
    start = clock.now()
    with time_machine.travel(start, tick=False):
        _emails(3, to=lambda n: addresses[n])

        # when the batch is dispatched
        assert outbox_dispatch_due() == 3

    # then the other two went out, the refused one waits 30 s with its error
    assert sorted(m.to[0] for m in mail.outbox) == ["a@example.com", "b@example.com"]
    refused = OutboxMessage.objects.get(payload__to="refused@example.com")
    assert (refused.status, refused.attempts) == (OutboxMessage.Status.PENDING, 1)
    assert "SMTPRecipientsRefused" in refused.last_error
    assert refused.next_attempt_at == start + timedelta(seconds=30)
    assert OutboxMessage.objects.filter(status=OutboxMessage.Status.SENT).count() == 2


def test_rows_claimed_by_a_dead_worker_are_sent_once_after_the_lease():
    # given 10 emails claimed by a dispatcher that died before handing any over
    _emails(10)
    start = clock.now()
    with time_machine.travel(start, tick=False) as traveller:
        claim = outbox_claim(limit=100)
        assert len(claim.messages) == 10
        assert set(OutboxMessage.objects.values_list("status", flat=True)) == {"claimed"}

        # when another dispatcher runs while the lease holds: nothing is sent
        assert outbox_dispatch_due() == 0
        assert mail.outbox == []

        # when the lease has expired: each is sent, exactly once
        traveller.shift(OUTBOX_LEASE + timedelta(seconds=1))
        assert outbox_dispatch_due() == 10
        assert outbox_dispatch_due() == 0

    assert len(mail.outbox) == 10
    assert len(set(_message_ids(mail.outbox))) == 10
    assert set(OutboxMessage.objects.values_list("status", "attempts")) == {("sent", 2)}


def test_a_worker_killed_mid_chunk_loses_nothing_and_repeats_only_with_the_same_message_id(
    settings,
):
    # given 60 emails and a worker that dies while handing over the fourth
    settings.EMAIL_BACKEND = "tests.test_outbox.CrashingBackend"
    messages = _emails(60)
    start = clock.now()
    with time_machine.travel(start, tick=False) as traveller:
        with pytest.raises(WorkerKilled):
            outbox_dispatch_due()
        sent_before_the_crash = _message_ids(mail.outbox)
        assert len(sent_before_the_crash) == 3
        # the first chunk's hand-over was recorded before it was sent; nothing else was
        handed_over = OutboxMessage.objects.filter(handed_over_at__isnull=False)
        assert handed_over.count() == EMAIL_CHUNK
        assert not OutboxMessage.objects.filter(status=OutboxMessage.Status.SENT).exists()

        # when the worker is restarted after the lease
        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
        traveller.shift(OUTBOX_LEASE + timedelta(seconds=1))
        assert outbox_dispatch_due() == 60

    # then every message was sent; the only repeats are the 3 handed over before the crash,
    # with the same Message-ID, so a receiver deduplicating by it shows each message once
    ids = _message_ids(mail.outbox)
    assert sorted(set(ids)) == sorted(message_id_for(m) for m in messages)
    repeats = sorted(message_id for message_id in set(ids) if ids.count(message_id) > 1)
    assert repeats == sorted(sent_before_the_crash)
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {"sent"}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_no_row_lock_is_held_while_an_email_is_handed_over(settings):
    # given two due emails and a mail backend that probes the row's lock while sending
    settings.EMAIL_BACKEND = "tests.test_outbox.LockProbingBackend"
    LOCKED_WHILE_SENDING.clear()
    _emails(2)

    # when they are dispatched
    assert outbox_dispatch_due() == 2

    # then another connection could lock each row while its email was being handed over
    assert LOCKED_WHILE_SENDING == [False, False]
    assert OutboxMessage.objects.filter(status=OutboxMessage.Status.SENT).count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_batch_dispatchers_send_each_email_exactly_once():
    # given 600 due emails (three claim batches)
    _emails(600)

    # when two dispatchers claim and send batches at the same time
    barrier = threading.Barrier(2)
    handled: list[int] = []
    errors: list[str] = []

    def dispatch() -> None:
        try:
            barrier.wait()
            handled.append(outbox_dispatch_due(batch_size=10_000))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=dispatch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then neither failed, and each email went out once, sent by exactly one of them
    assert errors == []
    assert sum(handled) == 600
    ids = _message_ids(mail.outbox)
    assert len(ids) == 600 == len(set(ids))
    assert set(OutboxMessage.objects.values_list("status", "attempts")) == {("sent", 1)}


class SlowMailServer(locmem.EmailBackend):
    """Takes 10 s per message (on the travelling clock); at the 40th, a second dispatcher runs."""

    traveller = None
    competitor_handled: list[int] = []

    def send_messages(self, messages):
        type(self).traveller.shift(timedelta(seconds=10))
        sent = super().send_messages(messages)
        if len(mail.outbox) == 40:
            type(self).competitor_handled.append(outbox_dispatch_due())
        return sent


def test_a_slow_batch_renews_its_lease_so_no_other_dispatcher_takes_its_rows(settings):
    # given 60 emails and a mail server slow enough that the batch outlives its first lease
    settings.EMAIL_BACKEND = "tests.test_outbox.SlowMailServer"
    SlowMailServer.competitor_handled = []
    messages = _emails(60)
    assert 60 * timedelta(seconds=10) > OUTBOX_LEASE
    with time_machine.travel(clock.now(), tick=False) as traveller:
        SlowMailServer.traveller = traveller

        # when it is dispatched, and another dispatcher runs 400 s in
        assert outbox_dispatch_due() == 60

    # then the other dispatcher found nothing to take, and each email went out once
    assert SlowMailServer.competitor_handled == [0]
    ids = _message_ids(mail.outbox)
    assert sorted(ids) == sorted(message_id_for(m) for m in messages)
    assert set(OutboxMessage.objects.values_list("status", "attempts")) == {("sent", 1)}


def test_the_dispatch_task_goes_through_a_backlog_batch_after_batch(settings):
    # given a backlog of 7 emails and batches of 2
    settings.TRADE_ASSURANCE = {**settings.TRADE_ASSURANCE, "SWEEP_BATCH_SIZE": 2}
    _emails(7)

    # when the task runs once, then it dispatched all of them, not only its first batch
    assert dispatch_outbox.apply().get() == 7
    assert len(mail.outbox) == 7
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {"sent"}


DISPATCHER_SCRIPT = """
import django
django.setup()
from tradeassure.platform.outbox import outbox_dispatch_due
outbox_dispatch_due()
"""


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_dispatcher_process_killed_mid_chunk_is_finished_after_restart_without_loss(tmp_path):
    # given 60 due emails and a real dispatcher process whose mail server hangs on the 31st
    # (the first chunk of 25 is sent and marked, the second is handed over, 5 of it sent)
    messages = _emails(60)
    sink = tmp_path / "accepted.txt"
    sink.write_text("")
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://{USER}@{HOST}:{PORT}/{NAME}".format(
            **{key: connection.settings_dict[key] or "" for key in ("USER", "HOST", "PORT", "NAME")}
        ),
        "DJANGO_SETTINGS_MODULE": "tradeassure.settings",
        "EMAIL_BACKEND": "tests.outbox_backends.HangingFileBackend",
        "OUTBOX_TEST_SINK": str(sink),
        "OUTBOX_TEST_HANG_AFTER": "30",
    }
    worker = subprocess.Popen(
        [sys.executable, "-c", DISPATCHER_SCRIPT], cwd=Path(__file__).resolve().parents[1], env=env
    )
    hung = Path(f"{sink}.hung")
    try:
        for _ in range(1200):  # polls until the worker hangs (or exits), whatever the load
            if hung.exists() or worker.poll() is not None:
                break
            threading.Event().wait(0.1)
        assert hung.exists(), "the dispatcher never reached its 31st email"
        # when the worker is killed (SIGKILL: nothing after it runs)
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)
    finally:
        if worker.poll() is None:
            worker.kill()
    accepted_before = sink.read_text().split()
    assert len(accepted_before) == 30
    statuses = dict(OutboxMessage.objects.values_list("status").annotate(n=Count("id")).order_by())
    assert statuses == {"sent": 25, "claimed": 35}
    assert (
        OutboxMessage.objects.filter(status="claimed", handed_over_at__isnull=False).count() == 25
    )

    # and a dispatcher runs again: within the lease nothing is taken, after it the rest goes out
    assert outbox_dispatch_due() == 0
    with time_machine.travel(clock.now() + OUTBOX_LEASE + timedelta(seconds=1), tick=False):
        assert outbox_dispatch_due() == 35

    # then no email was lost; the only repeats are the 5 the killed worker had handed over from
    # its last chunk, with the same Message-ID, so a receiver deduplicating by it sees each once
    accepted = accepted_before + _message_ids(mail.outbox)
    assert sorted(set(accepted)) == sorted(message_id_for(m) for m in messages)
    repeats = sorted(message_id for message_id in set(accepted) if accepted.count(message_id) > 1)
    assert repeats == sorted(accepted_before[25:])
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {"sent"}


# --- batched email rows (a set-based sweep's emails in a few rows) ------------------------------


def _batched_row(count: int, *, to=lambda n: f"batch{n}@example.com") -> OutboxMessage:
    """One due outbox row carrying `count` emails, as `notify_many` writes it."""
    now = clock.now()
    return OutboxMessage.objects.create(
        channel="email",
        payload={
            "emails": [{"to": to(n), "subject": f"S{n}", "body": f"B{n}"} for n in range(count)]
        },
        next_attempt_at=now,
        give_up_at=now + timedelta(days=3),
        created_at=now,
    )


def test_notify_many_writes_one_email_row_for_the_batch_and_each_email_goes_out_once(
    django_capture_on_commit_callbacks,
):
    from tradeassure.platform.events import NoticeSpec, notify_many

    # given three active buyers and one inactive one, told two things in one batch
    buyers = [BuyerFactory() for _ in range(3)]
    inactive = BuyerFactory(is_active=False)
    notices = [
        NoticeSpec(users=(*buyers, inactive), title="TA-1: cancelled", body="Why", url="/o/1/"),
        NoticeSpec(users=(buyers[0],), title="TA-2: late", body="", url=""),
    ]
    # when the batch is written and its transaction commits (the eager dispatcher runs)
    with django_capture_on_commit_callbacks(execute=True):
        assert notify_many(notices) == 4
    # then one outbox row carried the four emails, and each went out once with its own id
    row = OutboxMessage.objects.get()
    assert len(row.payload["emails"]) == 4
    assert sorted(e["to"] for e in queued_emails(OutboxMessage.objects.all())) == sorted(
        [b.email for b in buyers] + [buyers[0].email]
    )
    assert (row.status, row.emails_done, row.attempts) == ("sent", 4, 1)
    assert sorted((m.to[0], m.subject) for m in mail.outbox) == sorted(
        [(b.email, "[TradeAssure] TA-1: cancelled") for b in buyers]
        + [(buyers[0].email, "[TradeAssure] TA-2: late")]
    )
    assert sorted(_message_ids(mail.outbox)) == sorted(message_id_for(row, n) for n in range(4))
    assert mail.outbox[0].body.endswith("/o/1/")
    assert Notification.objects.count() == 4


def test_the_emails_of_a_batched_row_go_out_in_chunks_each_with_its_own_message_id(
    django_assert_max_num_queries,
):
    # given one row carrying 60 emails
    row = _batched_row(60)
    # when the dispatcher runs: one claim, per chunk of 25 a hand-over and a mark, the last claim
    with django_assert_max_num_queries(5 + 3 * 2 + 3 * 3 + 4):
        assert outbox_dispatch_due() == 1
    # then each email went out once, with a Message-ID of its own that names the row
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        f"batch{n}@example.com" for n in range(60)
    )
    ids = _message_ids(mail.outbox)
    assert len(set(ids)) == 60
    assert ids == [message_id_for(row, n) for n in range(60)]
    assert all(f"<outbox.{row.pk}." in message_id for message_id in ids)
    row.refresh_from_db()
    assert (row.status, row.emails_done, row.handed_over_at is not None) == ("sent", 60, True)
    # and a second run sends nothing more
    assert outbox_dispatch_due() == 0
    assert len(mail.outbox) == 60


def test_a_worker_killed_mid_batch_repeats_at_most_the_chunk_in_hand(settings):
    # given a row of 60 emails and a worker that dies while handing over the 31st (chunk 2)
    settings.EMAIL_BACKEND = "tests.test_outbox.CrashingBackend"
    CrashingBackend.crash_after = 30
    row = _batched_row(60)
    start = clock.now()
    try:
        with time_machine.travel(start, tick=False) as traveller:
            with pytest.raises(WorkerKilled):
                outbox_dispatch_due()
            before_the_crash = _message_ids(mail.outbox)
            assert len(before_the_crash) == 30
            # the first chunk was confirmed sent; the second was in hand
            row.refresh_from_db()
            assert (row.status, row.emails_done) == ("claimed", EMAIL_CHUNK)
            # when the worker is restarted after the lease
            settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
            traveller.shift(OUTBOX_LEASE + timedelta(seconds=1))
            assert outbox_dispatch_due() == 1
    finally:
        CrashingBackend.crash_after = 3
    # then every email went out; the only repeats are those of the chunk in hand at the crash
    # (at most one chunk), with the same Message-IDs
    ids = _message_ids(mail.outbox)
    assert sorted(set(ids)) == sorted(message_id_for(row, n) for n in range(60))
    repeats = sorted(message_id for message_id in set(ids) if ids.count(message_id) > 1)
    assert repeats == sorted(message_id_for(row, n) for n in range(EMAIL_CHUNK, 30))
    assert len(repeats) <= EMAIL_CHUNK
    row.refresh_from_db()
    assert (row.status, row.emails_done, row.attempts) == ("sent", 60, 2)


def test_a_refused_address_in_a_batched_row_is_split_off_and_retried_with_its_message_id(
    settings,
):
    # given a row of three emails, the middle one to an address the mail server refuses
    settings.EMAIL_BACKEND = "tests.test_outbox.RefusingBackend"
    addresses = ["a@example.com", "refused@example.com", "b@example.com"]
    start = clock.now()
    with time_machine.travel(start, tick=False) as traveller:
        row = _batched_row(3, to=lambda n: addresses[n])
        # when the row is dispatched
        assert outbox_dispatch_due() == 1
        # then the other two went out and the row is done
        assert sorted(m.to[0] for m in mail.outbox) == ["a@example.com", "b@example.com"]
        row.refresh_from_db()
        assert (row.status, row.emails_done) == ("sent", 3)
        # and the refused one waits 30 s in a row of its own, with its error and its Message-ID
        refused = OutboxMessage.objects.get(payload__to="refused@example.com")
        assert (refused.status, refused.attempts) == (OutboxMessage.Status.PENDING, 1)
        assert "SMTPRecipientsRefused" in refused.last_error
        assert refused.next_attempt_at == start + timedelta(seconds=30)
        assert refused.give_up_at == row.give_up_at
        assert message_id_for(refused) == message_id_for(row, 1)
        # when the address works again after the backoff
        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
        traveller.shift(timedelta(seconds=31))
        assert outbox_dispatch_due() == 1
    # then it went out once, with the Message-ID it had in the batch
    assert mail.outbox[-1].to == ["refused@example.com"]
    assert mail.outbox[-1].extra_headers["Message-ID"] == message_id_for(row, 1)
    refused.refresh_from_db()
    assert refused.status == OutboxMessage.Status.SENT


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_dispatchers_send_each_email_of_batched_rows_exactly_once():
    # given six rows of 100 emails each
    rows = [_batched_row(100, to=lambda n, r=r: f"r{r}n{n}@example.com") for r in range(6)]
    barrier = threading.Barrier(2)
    handled: list[int] = []
    errors: list[str] = []

    def dispatch() -> None:
        try:
            barrier.wait()
            handled.append(outbox_dispatch_due(batch_size=10_000))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(repr(error))
        finally:
            connection.close()

    # when two dispatchers run at the same time
    threads = [threading.Thread(target=dispatch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then each email went out once
    assert errors == [] and sum(handled) == 6
    ids = _message_ids(mail.outbox)
    assert len(ids) == 600 == len(set(ids))
    assert sorted(ids) == sorted(message_id_for(row, n) for row in rows for n in range(100))
    assert set(OutboxMessage.objects.values_list("status", "emails_done", "attempts")) == {
        ("sent", 100, 1)
    }
