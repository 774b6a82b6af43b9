"""The kernel's bulk insert: COPY on PostgreSQL (ids from the sequence first), ids in row order,
model defaults for the columns not given, every column type read back as given (JSON as data,
Decimals, moments with their zone, NULLs, text with tabs, newlines, backslashes and any
character), and an upsert on a unique column (PostgreSQL and SQLite)."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

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
    # when they are inserted in bulk (the new ids from the sequence, then one COPY)
    with django_assert_num_queries(2):
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


AWKWARD_TEXTS = [
    "tab\there",
    "line\nbreak and \r\n windows",
    "back\\slash \\N \\t \\\\ end\\",
    "unicode: Zürich — 東京 🚚 \u00a0nbsp",
    "\\.",  # COPY's old end-of-data marker, as a value
    "",
    "quotes ' \" and %s %(x)s",
]


def test_every_column_type_reads_back_as_given():
    # given outbox rows whose JSON, text, moments, uuid and NULLs are awkward
    tokyo = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=ZoneInfo("Asia/Tokyo"))
    claim = uuid.uuid4()
    payloads = [
        {"text": text, "nested": {"list": [1, 2.5, None, True], "n": -3}, "empty": {}}
        for text in AWKWARD_TEXTS
    ]
    rows = [
        (
            "email",
            payload,
            "pending",
            7,
            tokyo,
            tokyo + timedelta(days=3),
            text,
            tokyo,
            None,
            claim if n % 2 else None,
            None if n % 2 else datetime(2026, 1, 1, tzinfo=UTC),
        )
        for n, (payload, text) in enumerate(zip(payloads, AWKWARD_TEXTS, strict=True))
    ]
    columns = ["channel", "payload", "status", "attempts", "next_attempt_at", "give_up_at",
               "last_error", "created_at", "sent_at", "claim", "lease_expires_at"]  # fmt: skip
    # when they are inserted in bulk
    pks = bulk_insert(OutboxMessage, columns, rows, returning=True)
    # then every value reads back as given, each row under its own id
    saved = {m.pk: m for m in OutboxMessage.objects.filter(pk__in=pks)}
    for pk, row in zip(pks, rows, strict=True):
        message = saved[pk]
        assert tuple(getattr(message, name) for name in columns) == row
    assert saved[pks[0]].next_attempt_at == datetime(2026, 3, 1, 0, 30, 15, 123456, tzinfo=UTC)


def test_decimals_booleans_small_integers_and_nulls_read_back_as_given():
    from suppliers.models import SupplierOrderRecord
    from tests.suppliers.factories import SupplierFactory

    # given order records with amounts to the last decimal place, flags and empty dates
    supplier = SupplierFactory()
    now = clock.now()
    columns = ["supplier_id", "order_reference", "amount", "currency", "amount_usd", "status",
               "placed_at", "confirmed_at", "disputed", "dispute_lost", "rating", "updated_at"]  # fmt: skip
    rows = [
        (supplier.pk, "order:a", Decimal("0.00"), "USD", Decimal("0.00"), "open", now, None,
         False, False, None, now),
        (supplier.pk, "order:b", Decimal("123456789.99"), "EUR", Decimal("133000000.01"),
         "completed", now, now - timedelta(days=1), True, True, 5, now),
        (supplier.pk, "order:c", Decimal("1E+2"), "USD", Decimal("100"), "open", now, None,
         True, False, 1, now),
    ]  # fmt: skip
    # when they are inserted in bulk
    bulk_insert(SupplierOrderRecord, columns, rows)
    # then they read back equal
    saved = {r.order_reference: r for r in SupplierOrderRecord.objects.filter(supplier=supplier)}
    for row in rows:
        record = saved[row[1]]
        assert tuple(getattr(record, name) for name in columns) == row
    assert str(saved["order:b"].amount) == "123456789.99"


def test_the_copy_text_escapes_what_would_end_a_value_or_a_row():
    from tradeassure.core.bulk import copy_text

    field = SystemAlert._meta.get_field("message")
    assert copy_text([field], [("a\tb\nc\\d\re",), (None,)]) == "a\\tb\\nc\\\\d\\re\n\\N\n"


def test_a_failing_row_inserts_nothing_of_its_batch():
    from django.db import IntegrityError, transaction

    # given a batch whose last row breaks a constraint (no channel may be NULL)
    now = clock.now()
    good = ("email", {}, now, now, now)
    before = OutboxMessage.objects.count()
    # when it is inserted
    with pytest.raises(IntegrityError), transaction.atomic():
        bulk_insert(
            OutboxMessage,
            ["channel", "payload", "next_attempt_at", "give_up_at", "created_at"],
            [good, good, (None, {}, now, now, now)],
        )
    # then none of it is there
    assert OutboxMessage.objects.count() == before


def test_any_of_matches_what_in_matches_with_one_array_parameter(django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tradeassure.core.bulk import AnyOf

    # given five alerts
    now = clock.now()
    pks = bulk_insert(
        SystemAlert,
        ["source", "message", "created_at"],
        [(f"s{n}", f"m{n}", now) for n in range(5)],
        returning=True,
    )
    wanted = [pks[1], pks[3], 10**12]
    # when they are filtered by ids, by text, and by nothing
    with CaptureQueriesContext(connection) as captured:
        by_id = set(SystemAlert.objects.filter(AnyOf("pk", wanted)).values_list("pk", flat=True))
        by_text = set(
            SystemAlert.objects.filter(AnyOf("source", ["s0", "s4", "x'y"])).values_list(
                "source", flat=True
            )
        )
        nothing = list(SystemAlert.objects.filter(AnyOf("pk", [])))
    # then each finds what `__in` finds, and the ids went as one array
    assert by_id == set(SystemAlert.objects.filter(pk__in=wanted).values_list("pk", flat=True))
    assert by_text == {"s0", "s4"}
    assert nothing == []
    assert "= ANY(" in captured[0]["sql"]
    # and an UPDATE filtered by it changes exactly those rows
    assert SystemAlert.objects.filter(AnyOf("pk", wanted)).update(message="changed") == 2
    assert SystemAlert.objects.filter(message="changed").count() == 2
