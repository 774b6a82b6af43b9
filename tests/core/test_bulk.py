"""The kernel's bulk insert: one statement per page, ids in row order, model defaults for the
columns not given, JSON as data, an upsert on a unique column, and an insert of only the rows
whose unique key is new (PostgreSQL and SQLite)."""

from datetime import timedelta
from decimal import Decimal

import pytest

from tradeassure.core import clock
from tradeassure.core.bulk import bulk_insert, bulk_insert_new
from tradeassure.platform.models import OutboxMessage, SystemAlert

pytestmark = pytest.mark.django_db


def test_rows_are_inserted_with_their_ids_in_order_and_defaults_filled(
    django_assert_num_queries,
):
    # given three outbox rows that name only some columns (status, attempts… left to defaults)
    now = clock.now()
    rows = [
        ("email", {"to": f"u{n}@example.com", "n": n}, now, now + timedelta(days=1), now)
        for n in range(3)
    ]
    # when they are inserted in bulk
    with django_assert_num_queries(1):
        pks = bulk_insert(
            OutboxMessage,
            ["channel", "payload", "next_attempt_at", "give_up_at", "created_at"],
            rows,
            returning=True,
        )
    # then each came back in order, with its JSON data and the model's defaults
    saved = list(OutboxMessage.objects.filter(pk__in=pks).order_by("pk"))
    assert [m.pk for m in saved] == pks
    assert [m.payload["n"] for m in saved] == [0, 1, 2]
    assert {(m.status, m.attempts, m.last_error, m.sent_at) for m in saved} == {
        (OutboxMessage.Status.PENDING, 0, "", None)
    }


def test_nothing_to_insert_writes_nothing(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert bulk_insert(SystemAlert, ["source", "message", "created_at"], []) == []


def test_text_with_quotes_and_percent_signs_is_stored_as_given():
    text = "O'Brien paid 100% — \\ done; DROP TABLE x; --"
    pks = bulk_insert(
        SystemAlert, ["source", "message", "created_at"], [("t", text, clock.now())], returning=True
    )
    assert SystemAlert.objects.get(pk=pks[0]).message == text


def test_an_upsert_updates_the_row_with_the_same_unique_key():
    from suppliers.models import SupplierOrderRecord
    from tests.suppliers.factories import SupplierFactory

    supplier = SupplierFactory()
    now = clock.now()
    columns = ["supplier_id", "order_reference", "amount", "currency", "amount_usd", "status",
               "placed_at", "updated_at"]  # fmt: skip
    first = (supplier.pk, "order:1", Decimal("10.00"), "USD", Decimal("10.00"), "open", now, now)
    bulk_insert(SupplierOrderRecord, columns, [first], upsert_on=["order_reference"])
    again = (
        supplier.pk,
        "order:1",
        Decimal("10.00"),
        "USD",
        Decimal("10.00"),
        "completed",
        now,
        now,
    )
    bulk_insert(SupplierOrderRecord, columns, [again], upsert_on=["order_reference"])
    record = SupplierOrderRecord.objects.get(order_reference="order:1")
    assert record.status == "completed"
    assert SupplierOrderRecord.objects.filter(order_reference="order:1").count() == 1


def test_insert_new_inserts_only_the_new_keys_and_returns_what_it_inserted():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tradeassure.platform.models import ReminderSent

    # given one reminder already recorded
    now = clock.now()
    due = now + timedelta(days=2)
    columns = ["subject_kind", "subject_id", "deadline", "due_at", "lead_days", "sent_at"]
    key = ["subject_kind", "subject_id", "deadline", "due_at", "lead_days"]
    bulk_insert_new(
        ReminderSent, columns, [("order", 1, "payment", due, 3, now)], unique_on=key,
        returning="subject_id",
    )  # fmt: skip

    # when the same key and two new ones (another subject; the same one at another lead) are
    # inserted with one statement (on PostgreSQL; SQLite goes row by row)
    with CaptureQueriesContext(connection) as queries:
        inserted = bulk_insert_new(
            ReminderSent,
            columns,
            [
                ("order", 1, "payment", due, 3, now),
                ("order", 2, "payment", due, 3, now),
                ("order", 1, "payment", due, 1, now),
            ],
            unique_on=key,
            returning="lead_days",
        )

    # then only the new rows were written and returned
    assert sorted(inserted) == [1, 3]
    if connection.vendor == "postgresql":
        assert len(queries) == 1
    assert ReminderSent.objects.count() == 3


# --- insert_linked: a few new rows pointing at each other, one statement ----------------------


def test_linked_rows_are_written_by_one_statement_and_hold_their_ids_afterwards(
    django_assert_num_queries,
):
    from accounts.models import Organisation
    from tradeassure.core.bulk import NewId, insert_linked
    from tradeassure.platform.models import DomainEvent

    # given an event and two audience rows that point at it before it has an id
    orgs = [Organisation.objects.create(name=f"Org {n}") for n in range(2)]
    event = DomainEvent(
        topic="order.placed",
        subject_type="order",
        subject_id=7,
        payload={"order": "TA-000007", "n": [1, "1.50"]},
        occurred_at=clock.now(),
    )
    through = DomainEvent.audience.through
    audience = [through(domainevent_id=NewId(event), organisation_id=org.pk) for org in orgs]
    # when they are inserted together
    with django_assert_num_queries(1):
        insert_linked([event, *audience])
    # then each holds its id and counts as saved, and the rows point at the event
    assert event.pk is not None and not event._state.adding
    assert [row.domainevent_id for row in audience] == [event.pk, event.pk]
    assert all(row.pk is not None for row in audience)
    stored = DomainEvent.objects.get(pk=event.pk)
    assert stored.payload == {"order": "TA-000007", "n": [1, "1.50"]}
    assert sorted(stored.audience.values_list("pk", flat=True)) == sorted(o.pk for o in orgs)


def test_a_row_pointing_at_a_row_written_after_it_is_refused_and_nothing_is_written():
    from accounts.models import Organisation
    from tradeassure.core.bulk import NewId, insert_linked
    from tradeassure.platform.models import DomainEvent

    # given an audience row placed before the event it points at
    org = Organisation.objects.create(name="Org")
    event = DomainEvent(topic="order.placed", subject_type="order", subject_id=1, payload={})
    event.occurred_at = clock.now()
    row = DomainEvent.audience.through(domainevent_id=NewId(event), organisation_id=org.pk)
    before = DomainEvent.objects.count()
    # when they are inserted in that order, then it is refused before anything is sent
    with pytest.raises(ValueError, match="before it"):
        insert_linked([row, event])
    assert DomainEvent.objects.count() == before
