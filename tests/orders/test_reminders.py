"""Reminders before the order deadlines that act by themselves: the party who must act is told 3
days and 1 day before, once each, in the bell and by email, in their own time zone; never for a
deadline that moved (only for its new time) or that no longer applies; once when two sweeps run
at once; with a constant number of queries per batch."""

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from orders import services
from orders.inspection.models import PreshipmentInspection
from orders.models import Order, OrderStatus
from orders.reminders import REMINDER_SOURCES
from tests.factories import BuyerFactory
from tests.orders.factories import book_inspection, order_in, pay_inspection, supplier_user_of
from tests.suppliers.factories import supplier_staff_for
from tradeassure.core import clock
from tradeassure.core.moments import local_text
from tradeassure.platform import tasks
from tradeassure.platform.models import Notification, OutboxMessage, ReminderSent
from tradeassure.platform.outbox import queued_emails
from tradeassure.platform.reminders import reminders_send_due

S = OrderStatus
REMINDER = ": reminder — "

# deadline name: (status, due column, the side that must act)
ORDER_DEADLINES = {
    "confirmation": (S.PENDING_CONFIRMATION, "confirmation_due_at", "supplier"),
    "initial_payment": (S.AWAITING_PAYMENT, "payment_due_at", "buyer"),
    "balance": (S.AWAITING_BALANCE, "payment_due_at", "buyer"),
    "shipment": (S.IN_PRODUCTION, "shipment_due_at", "supplier"),
    "receipt": (S.SHIPPED, "receipt_due_at", "buyer"),
    "claim_window": (S.DELIVERED, "completion_due_at", "buyer"),
}


def source(name: str):
    return next(s for s in REMINDER_SOURCES if s.deadline == name)


def reminders_to(user: User) -> list[Notification]:
    return list(Notification.objects.filter(recipient=user, title__contains=REMINDER))


def reminder_emails_to(user: User) -> list[dict]:
    queued = queued_emails(OutboxMessage.objects.filter(channel="email").order_by("pk"))
    return [e for e in queued if e["to"] == user.email and REMINDER in e["subject"]]


def with_deadline(order: Order, field: str, due) -> Order:
    Order.objects.filter(pk=order.pk).update(**{field: due})
    order.refresh_from_db()
    return order


def sweep_at(moment) -> int:
    with time_machine.travel(moment, tick=False):
        return reminders_send_due()


def test_every_order_deadline_that_acts_by_itself_has_a_source():
    order_sources = [s for s in REMINDER_SOURCES if s.kind == "order"]
    assert {s.deadline for s in order_sources} == set(ORDER_DEADLINES)
    assert {(s.kind, s.due_field) for s in order_sources} == {
        ("order", field) for _, field, _ in ORDER_DEADLINES.values()
    }
    assert {(s.kind, s.deadline, s.due_field) for s in REMINDER_SOURCES if s.kind != "order"} == {
        ("preshipment_inspection", "fee", "fee_due_at")
    }


@pytest.mark.django_db
def test_the_buyer_is_reminded_to_pay_a_booked_pre_shipment_inspection_once_and_not_after_paying():
    # given a booked pre-shipment inspection whose fee is due in five days
    order = order_in(S.IN_PRODUCTION)
    inspection, _inspector = book_inspection(order)
    due = clock.now() + timedelta(days=5)
    PreshipmentInspection.objects.filter(pk=inspection.pk).update(fee_due_at=due)
    supplier = supplier_user_of(order)

    # when the sweep runs inside 3 days, twice
    assert sweep_at(due - timedelta(days=3) + timedelta(minutes=1)) == 1
    assert sweep_at(due - timedelta(days=3) + timedelta(minutes=2)) == 0

    # then the buyer (who pays) has one reminder in the bell and by email; the supplier none
    (reminder,) = reminders_to(order.buyer)
    assert "pre-shipment inspection fee" in reminder.title
    assert local_text(due, order.buyer.time_zone) in reminder.body
    assert reminder.url == order.get_absolute_url()
    assert len(reminder_emails_to(order.buyer)) == 1
    assert reminders_to(supplier) == []

    # when the fee is paid, then the 1-day reminder is not sent
    inspection.refresh_from_db()
    pay_inspection(inspection)
    assert sweep_at(due - timedelta(hours=12)) == 0
    assert len(reminders_to(order.buyer)) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("name", ORDER_DEADLINES)
def test_the_party_who_must_act_is_reminded_3_days_and_1_day_before_once_each(name):
    status, field, side = ORDER_DEADLINES[name]
    # given an order whose deadline is five days away
    order = order_in(status)
    due = clock.now() + timedelta(days=5)
    order = with_deadline(order, field, due)
    acting = order.buyer if side == "buyer" else supplier_user_of(order)
    other = supplier_user_of(order) if side == "buyer" else order.buyer

    # when the sweep runs before the 3-day mark, then nothing is sent
    assert sweep_at(due - timedelta(days=3, minutes=1)) == 0
    assert reminders_to(acting) == []

    # when it runs just inside 3 days, twice
    assert sweep_at(due - timedelta(days=3) + timedelta(minutes=1)) == 1
    assert sweep_at(due - timedelta(days=3) + timedelta(minutes=2)) == 0

    # then the party who must act has one reminder, in the bell and by email; the other none
    (three_days,) = reminders_to(acting)
    assert three_days.title.startswith(f"{order.reference}{REMINDER}")
    assert "(in 3 days)" in three_days.body and local_text(due, acting.time_zone) in three_days.body
    assert three_days.url == order.get_absolute_url()
    assert len(reminder_emails_to(acting)) == 1
    assert reminders_to(other) == []

    # when it runs inside the last day, twice, and again just before the deadline
    assert sweep_at(due - timedelta(days=1) + timedelta(minutes=1)) == 1
    assert sweep_at(due - timedelta(hours=12)) == 0
    assert sweep_at(due - timedelta(seconds=1)) == 0

    # then one more reminder (the 1-day one), and that is all
    assert len(reminders_to(acting)) == 2
    assert "(in 1 day)" in reminders_to(acting)[0].body
    assert len(reminder_emails_to(acting)) == 2
    assert reminders_to(other) == []
    assert sorted(
        ReminderSent.objects.filter(subject_kind="order", subject_id=order.pk).values_list(
            "deadline", "due_at", "lead_days"
        )
    ) == [(name, due, 1), (name, due, 3)]


@pytest.mark.django_db
def test_every_member_on_the_acting_side_is_reminded_in_their_own_time_zone():
    # given an order awaiting payment, whose buyer organisation has a colleague in New York,
    # the buyer being in Tokyo
    order = order_in(S.AWAITING_PAYMENT)
    User.objects.filter(pk=order.buyer.pk).update(time_zone="Asia/Tokyo")
    colleague = BuyerFactory(organisation=order.buyer_organisation, time_zone="America/New_York")
    due = clock.now().replace(microsecond=0) + timedelta(days=2)
    with_deadline(order, "payment_due_at", due)

    # when the reminders go out
    assert sweep_at(clock.now()) == 1

    # then each reads the exact deadline in their own zone, in the bell and the email
    for user, zone, shown in (
        (order.buyer, "Asia/Tokyo", "JST"),
        (colleague, "America/New_York", "EST"),
    ):
        (notice,) = reminders_to(user)
        expected = local_text(due, zone)
        assert shown in expected
        assert expected in notice.title and expected in notice.body
        (email,) = reminder_emails_to(user)
        assert expected in email["subject"] and expected in email["body"]
        assert email["body"].endswith(order.get_absolute_url())
    assert local_text(due, "UTC") not in reminders_to(order.buyer)[0].body


@pytest.mark.django_db
def test_the_confirmation_reminder_goes_to_the_buyer_when_the_supplier_proposed_changes():
    from tests.orders.helpers import _changed_terms

    # given a placed order whose supplier proposed changes (the buyer must answer)
    order = order_in(S.PENDING_CONFIRMATION)
    staff = supplier_user_of(order)
    services.order_propose_changes(order=order, actor=staff, terms=_changed_terms(order))
    order.refresh_from_db()
    due = clock.now() + timedelta(hours=30)
    with_deadline(order, "confirmation_due_at", due)

    # when the reminders go out
    sweep_at(clock.now())

    # then the buyer is reminded, not the supplier
    assert len(reminders_to(order.buyer)) == 1
    assert reminders_to(staff) == []


@pytest.mark.django_db
def test_a_deadline_set_less_than_a_day_ahead_gets_only_the_1_day_reminder():
    # given an order whose shipment deadline is 20 hours away when it is first swept
    order = order_in(S.IN_PRODUCTION)
    due = clock.now() + timedelta(hours=20)
    with_deadline(order, "shipment_deadline", due)
    with_deadline(order, "shipment_due_at", due)
    staff = supplier_user_of(order)

    # when the sweep runs now and every few hours until the deadline
    sent = [sweep_at(due - timedelta(hours=hours)) for hours in (20, 12, 6, 1)]

    # then the supplier got the 1-day reminder once, and never a 3-day one
    assert sent == [1, 0, 0, 0]
    (notice,) = reminders_to(staff)
    assert "(in 20 hours)" in notice.body
    assert list(ReminderSent.objects.values_list("lead_days", flat=True)) == [1]


@pytest.mark.django_db
def test_a_moved_deadline_is_reminded_for_its_new_time_only():
    # given a receipt deadline five days away, reminded 3 days before
    order = order_in(S.SHIPPED)
    due = clock.now().replace(microsecond=0) + timedelta(days=5)
    with_deadline(order, "receipt_due_at", due)
    sweep_at(due - timedelta(days=3) + timedelta(minutes=1))
    assert len(reminders_to(order.buyer)) == 1

    # when the buyer extends the receipt window (by 15 days)
    with time_machine.travel(due - timedelta(days=2), tick=False):
        services.order_extend_receipt_window(order=order, actor=order.buyer)
    order.refresh_from_db()
    assert order.receipt_due_at > due
    moved = order.receipt_due_at

    # and the sweep runs when the old deadline would have had its 1-day reminder
    assert sweep_at(due - timedelta(days=1) + timedelta(minutes=1)) == 0

    # then nothing is sent for the old time; the new time is reminded in its own bands
    assert sweep_at(moved - timedelta(days=3) + timedelta(minutes=1)) == 1
    assert sweep_at(moved - timedelta(days=1) + timedelta(minutes=1)) == 1
    sent = sorted(
        ReminderSent.objects.filter(subject_id=order.pk, due_at=moved).values_list(
            "due_at", "lead_days"
        )
    )
    assert sent == [(moved, 1), (moved, 3)]
    notices = sorted(reminders_to(order.buyer), key=lambda n: n.pk)
    assert len(notices) == 3
    new_time = local_text(moved, order.buyer.time_zone)
    assert all(new_time in n.body for n in notices[1:])


@pytest.mark.django_db
def test_no_reminder_for_a_deadline_that_no_longer_applies():
    # given an order whose initial payment is due in two days, but it is paid meanwhile
    paid = order_in(S.AWAITING_PAYMENT)
    with_deadline(paid, "payment_due_at", clock.now() + timedelta(days=2))
    from tests.orders.factories import pay

    pay(paid)
    paid.refresh_from_db()
    assert paid.status == S.IN_PRODUCTION
    # and a shipped order whose receipt timer a dispute paused (cleared while disputed)
    disputed = order_in(S.SHIPPED)
    with_deadline(disputed, "receipt_due_at", clock.now() + timedelta(days=2))
    services.order_dispute_opened(order=disputed, actor=disputed.buyer)
    disputed.refresh_from_db()
    assert disputed.receipt_due_at is None and "receipt_due_at" in disputed.paused_timers
    # and an order cancelled before its confirmation deadline
    cancelled = order_in(S.PENDING_CONFIRMATION)
    with_deadline(cancelled, "confirmation_due_at", clock.now() + timedelta(days=2))
    services.order_cancel(order=cancelled, actor=cancelled.buyer, reason="Changed plans")
    # and an order whose shipment deadline is set but in a status where it does not run
    balance = order_in(S.AWAITING_BALANCE)
    with_deadline(balance, "shipment_due_at", clock.now() + timedelta(days=2))
    balance_payment_due = balance.payment_due_at

    # when the sweep runs inside every one of those windows
    sweep_at(clock.now() + timedelta(hours=1))

    # then nobody is reminded of any of them (the waiting balance is another deadline)
    assert not ReminderSent.objects.exclude(deadline="balance").exists()
    for order in (paid, disputed, cancelled):
        assert reminders_to(order.buyer) == []
        assert reminders_to(supplier_user_of(order)) == []
    assert reminders_to(supplier_user_of(balance)) == []
    assert balance_payment_due is not None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_send_each_reminder_once(settings):
    # given several orders awaiting payment within the 3-day band, and batches of 2
    settings.TRADE_ASSURANCE = {**settings.TRADE_ASSURANCE, "SWEEP_SET_BATCH_SIZE": 2}
    orders = [order_in(S.AWAITING_PAYMENT) for _ in range(5)]
    due = clock.now() + timedelta(days=2)
    Order.objects.filter(pk__in=[o.pk for o in orders]).update(payment_due_at=due)
    barrier = threading.Barrier(2)
    results, errors = [], []

    def run():
        try:
            barrier.wait(timeout=10)
            results.append(reminders_send_due(sources=[source("initial_payment")]))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    # when two sweeps run at the same moment, in two threads
    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # then every buyer got exactly one reminder, and one email
    assert errors == []
    assert sum(results) == 5
    for order in orders:
        assert len(reminders_to(order.buyer)) == 1
        assert len(reminder_emails_to(order.buyer)) == 1
    assert ReminderSent.objects.count() == 5


@pytest.mark.postgres  # SQLite (the embedded profile) records reminders row by row
@pytest.mark.django_db
def test_a_batch_costs_the_same_queries_whatever_its_size(django_assert_max_num_queries):
    def batch_of(count: int) -> int:
        ReminderSent.objects.all().delete()
        Order.objects.filter(status=S.AWAITING_PAYMENT).update(payment_due_at=None)
        orders = [order_in(S.AWAITING_PAYMENT) for _ in range(count)]
        for order in orders[1:]:  # a second buyer in some organisations
            BuyerFactory(organisation=order.buyer_organisation)
        Order.objects.filter(pk__in=[o.pk for o in orders]).update(
            payment_due_at=clock.now() + timedelta(days=2)
        )
        with CaptureQueriesContext(connection) as queries:
            assert reminders_send_due(sources=[source("initial_payment")]) == count
        return len(queries)

    # given batches of 2 and of 6 due reminders; when each is swept, then the queries are equal
    small, large = batch_of(2), batch_of(6)
    assert small == large
    assert small <= 12


@pytest.mark.django_db
def test_the_beat_task_sends_the_reminders_and_is_scheduled_every_minute():
    from django.apps import apps

    # given an order due for its 3-day reminder
    order = order_in(S.DELIVERED)
    with_deadline(order, "completion_due_at", clock.now() + timedelta(days=2, hours=5))

    # when beat's task runs
    assert tasks.send_reminders.delay().get() == 1

    # then the buyer is reminded, and the task is on the platform's schedule every 60 s
    assert len(reminders_to(order.buyer)) == 1
    schedule = {t.task: t.every_seconds for t in apps.get_app_config("tradeassure").periodic_tasks}
    assert schedule["tradeassure.send_reminders"] == 60


@pytest.mark.django_db
def test_the_demo_reminds_a_buyer_in_the_first_minutes():
    from orders.demo import seed
    from suppliers.demo import seed as seed_suppliers
    from tradeassure.platform.demo import seed_demo_users

    # given the demo data, just seeded
    users = seed_demo_users()
    seed_suppliers(users)
    seed(users)
    order = Order.objects.get(purchase_order_number="DEMO-O-awaiting-payment")

    # when beat sweeps a few minutes later
    sweep_at(clock.now() + timedelta(minutes=3))

    # then the demo buyer has its 3-day reminder to pay, with the exact time
    (notice,) = [n for n in reminders_to(users["buyer"]) if order.reference in n.title]
    assert "make the initial payment by" in notice.title
    assert local_text(order.payment_due_at, users["buyer"].time_zone) in notice.body
    assert ReminderSent.objects.get(subject_id=order.pk, deadline="initial_payment").lead_days == 3


@pytest.mark.django_db
def test_supplier_staff_added_later_are_reminded_too():
    # given an order in production, and a second staff member joining the supplier
    order = order_in(S.IN_PRODUCTION)
    newcomer = supplier_staff_for(order.supplier)
    with_deadline(order, "shipment_due_at", clock.now() + timedelta(hours=10))

    # when the reminders go out
    sweep_at(clock.now())

    # then every active staff member of the supplier is reminded
    assert len(reminders_to(newcomer)) == 1
    assert len(reminders_to(supplier_user_of(order))) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("leads", "sent_at_days_left"),
    [([2], {2}), ([7, 3, 1], {7, 3, 1}), ([], set())],
)
def test_the_lead_days_are_a_setting(settings, leads, sent_at_days_left):
    # given TA_REMINDER_LEAD_DAYS set, and an order whose payment is due in 10 days
    settings.TRADE_ASSURANCE = {**settings.TRADE_ASSURANCE, "REMINDER_LEAD_DAYS": leads}
    order = order_in(S.AWAITING_PAYMENT)
    due = clock.now() + timedelta(days=10)
    with_deadline(order, "payment_due_at", due)

    # when the sweep runs just inside each whole day before the deadline
    sent = {days for days in range(10, 0, -1) if sweep_at(due - timedelta(days=days, minutes=-1))}

    # then a reminder went out at each lead, and only there
    assert sent == sent_at_days_left
    assert len(reminders_to(order.buyer)) == len(sent_at_days_left)


@pytest.mark.django_db
def test_the_reminder_shows_in_the_buyers_notifications_with_their_local_time(client):
    from django.urls import reverse

    from tests.factories import PASSWORD

    # given a buyer in Singapore whose order's receipt window closes in a day
    order = order_in(S.SHIPPED)
    User.objects.filter(pk=order.buyer.pk).update(time_zone="Asia/Singapore")
    due = clock.now().replace(microsecond=0) + timedelta(hours=23)
    with_deadline(order, "receipt_due_at", due)
    sweep_at(clock.now())

    # when the buyer opens the notifications page
    assert client.login(email=order.buyer.email, password=PASSWORD)
    page = client.get(reverse("notifications")).content.decode()

    # then the reminder is there, new, with the deadline in Singapore time and a link to the order
    assert (
        f"{order.reference}: reminder — confirm receipt by {local_text(due, 'Asia/Singapore')}"
        in page
    )
    assert "+08" in local_text(due, "Asia/Singapore")
    assert f'href="{order.get_absolute_url()}"' in page
