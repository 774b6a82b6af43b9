"""Insert many rows with few statements and little Python per row: what a set-based sweep writes
for a batch (timeline rows, domain events, notifications, outbox rows) is thousands of rows.

`bulk_create` prepares every value of every model instance through its field (about 10 µs a
value); a batch of 1,000 transitions writes about 10,000 rows, so that alone capped a sweep at a
few hundred transitions a second. Here the caller gives the column values as the database takes
them (ints, strings, aware datetimes, Decimals; JSON as Python data).

On PostgreSQL the rows are streamed with `COPY … FROM STDIN` (text format), each value encoded
by a small per-column function chosen once from the model field (no SQL literal rendered, no
statement for the server to parse per row): several times faster than an `INSERT … VALUES` of
the same rows, in Python and in the server. New ids (`returning=True`) are taken from the
table's sequence first (one `SELECT nextval(…) FROM generate_series(…)`) and copied with the
rows, so they come back in row order. An upsert (`upsert_on`) copies into a temporary table of
the session and merges from it with one `INSERT … SELECT … ON CONFLICT DO UPDATE`. Everything
goes through Django's cursor, in the caller's transaction, and is counted and logged as a
query. Elsewhere (SQLite) it falls back to `bulk_create`. The kernel knows no app: models come
in as arguments.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from decimal import Decimal
from typing import Any

from django.db import connection, models, transaction
from django.db.models import F, Func
from django.utils import timezone

PAGE_ROWS = 2000
# How much of the COPY data psycopg reads and sends at a time.
COPY_CHUNK = 1 << 20

Encoder = Callable[[Any], str]

# COPY's text format: a backslash, a tab, a newline or a carriage return inside a value is
# written as its backslash escape (`escape`); NULL is \N.
NULL = "\\N"


def bulk_insert(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    returning: bool = False,
    upsert_on: Sequence[str] = (),
) -> list[int]:
    """Insert `rows` (one value per column, `columns` are field attnames) into `model`'s table;
    return the new primary keys in row order when `returning`. With `upsert_on` (the columns
    of a unique constraint), a row that conflicts updates the other columns instead."""
    if not rows:
        return []
    columns, rows = _with_defaults(model, columns, rows)
    concrete: dict[str, models.Field] = {f.attname: f for f in model._meta.concrete_fields}
    fields = [concrete[name] for name in columns]
    if connection.vendor != "postgresql":
        json_columns = {i for i, field in enumerate(fields) if isinstance(field, models.JSONField)}
        return _fallback(model, columns, rows, json_columns, returning, upsert_on)
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    pk = model._meta.pk
    assert pk is not None
    if upsert_on:
        return _copy_upsert(model, fields, rows, upsert_on, returning)
    if returning:
        pks = _next_ids(model, len(rows))
        fields = [pk, *fields]
        rows = [(new_pk, *row) for new_pk, row in zip(pks, rows, strict=True)]
    else:
        pks = []
    _copy(table, fields, rows)
    return pks


def bulk_insert_new(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    unique_on: Sequence[str],
    returning: str,
) -> list[Any]:
    """Insert the `rows` whose `unique_on` key (the columns of a unique constraint) is not in
    the table yet, and return the `returning` column of the rows actually inserted:
    `INSERT … ON CONFLICT (…) DO NOTHING RETURNING …`. What a sweep records to act once: a
    second sweep inserting the same keys at the same moment waits for the first one's commit,
    then inserts nothing and gets nothing back."""
    if not rows:
        return []
    columns, rows = _with_defaults(model, columns, rows)
    concrete: dict[str, models.Field] = {f.attname: f for f in model._meta.concrete_fields}
    fields = [concrete[name] for name in columns]
    if connection.vendor != "postgresql":
        return _fallback_new(model, columns, rows, returning)
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    names = ", ".join(quote(str(field.column)) for field in fields)
    conflict = ", ".join(quote(str(concrete[name].column)) for name in unique_on)
    suffix = (
        f" ON CONFLICT ({conflict}) DO NOTHING RETURNING {quote(str(concrete[returning].column))}"
    )
    inserted: list[Any] = []
    with connection.cursor() as cursor:
        literal = _literals(cursor.cursor)
        for start in range(0, len(rows), PAGE_ROWS):
            page = rows[start : start + PAGE_ROWS]
            values = ",".join("(" + ",".join(literal(value) for value in row) + ")" for row in page)
            cursor.execute(f"INSERT INTO {table} ({names}) VALUES {values}{suffix}")
            inserted.extend(value for (value,) in cursor.fetchall())
    return inserted


def _fallback_new(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]], returning: str
) -> list[Any]:
    """SQLite (the embedded profile): one savepoint per row; a row whose key exists is skipped."""
    from django.db import IntegrityError, transaction

    inserted: list[Any] = []
    for row in rows:
        values = dict(zip(columns, row, strict=True))
        try:
            with transaction.atomic():
                model._default_manager.create(**values)
        except IntegrityError:
            continue
        inserted.append(values[returning])
    return inserted


def _literals(raw_cursor: Any) -> Callable[[Any], str]:
    """The SQL literal of a value, rendered by the driver (`mogrify`); a batch repeats most of
    its values (the moment, the statuses, the titles), so each distinct one is rendered once."""
    cache: dict[tuple[type, Any], str] = {}
    mogrify = raw_cursor.mogrify

    def literal(value: Any) -> str:
        try:
            key = (type(value), value)
            found = cache.get(key)
        except TypeError:  # unhashable: rendered each time
            return str(mogrify("%s", (value,)).decode())
        if found is None:
            found = cache[key] = str(mogrify("%s", (value,)).decode())
        return found

    return literal


def _copy(table: str, fields: Sequence[models.Field], rows: Sequence[Sequence[Any]]) -> None:
    """Stream `rows` into `table` with one `COPY … FROM STDIN` through Django's cursor."""
    quote = connection.ops.quote_name
    names = ", ".join(quote(str(field.column)) for field in fields)
    sql = f"COPY {table} ({names}) FROM STDIN"
    data = copy_text(fields, rows)
    with connection.cursor() as cursor:
        logged = getattr(cursor, "debug_sql", None)  # counted and logged like any query
        with logged(sql) if logged is not None else nullcontext(), connection.wrap_database_errors:
            cursor.cursor.copy_expert(sql, io.StringIO(data), size=COPY_CHUNK)


def _next_ids(model: type[models.Model], count: int) -> list[int]:
    """`count` new primary keys from the table's own sequence (the one its inserts use)."""
    pk = model._meta.pk
    assert pk is not None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(q.seq) FROM (SELECT pg_get_serial_sequence(%s, %s)::regclass AS seq)"
            " AS q CROSS JOIN generate_series(1, %s)",
            [connection.ops.quote_name(model._meta.db_table), pk.column, count],
        )
        pks = [new_pk for (new_pk,) in cursor.fetchall()]
    if pks and pks[0] is None:
        raise ValueError(f"{model._meta.db_table}.{pk.column} has no sequence to take ids from.")
    return pks


def _copy_upsert(
    model: type[models.Model],
    fields: Sequence[models.Field],
    rows: Sequence[Sequence[Any]],
    upsert_on: Sequence[str],
    returning: bool,
) -> list[int]:
    """COPY into a temporary table of the session (created once, emptied at commit), then one
    `INSERT … SELECT … ON CONFLICT (…) DO UPDATE` from it."""
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    names = ", ".join(quote(str(field.column)) for field in fields)
    # One staging table per (table, columns) in the session; the name fits PostgreSQL's 63 bytes.
    digest = hashlib.sha1(names.encode()).hexdigest()[:10]
    staging = quote(f"_bulk_{model._meta.db_table[:40]}_{digest}")
    updates = ", ".join(
        f"{quote(str(field.column))} = EXCLUDED.{quote(str(field.column))}"
        for field in fields
        if field.attname not in upsert_on
    )
    conflict = ", ".join(
        quote(str(field.column)) for field in fields if field.attname in set(upsert_on)
    )
    pk = model._meta.pk
    assert pk is not None
    suffix = f" RETURNING {quote(str(pk.column))}" if returning else ""
    # The staging table lives as long as the transaction's rows do: it must be one transaction.
    with transaction.atomic(savepoint=False):
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} ON COMMIT DELETE ROWS AS "
                f"SELECT {names} FROM {table} WITH NO DATA"
            )
            cursor.execute(f"TRUNCATE {staging}")
        _copy(staging, fields, rows)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} ({names}) SELECT {names} FROM {staging} "
                f"ON CONFLICT ({conflict}) DO UPDATE SET {updates}{suffix}"
            )
            return [new_pk for (new_pk,) in cursor.fetchall()] if returning else []


# --- COPY's text format ----------------------------------------------------------------------


def copy_text(fields: Sequence[models.Field], rows: Sequence[Sequence[Any]]) -> str:
    """The rows as COPY text: one line per row, values tab-separated, each encoded by its
    column's encoder (chosen once per column from the field)."""
    encoders = [_encoder_for(field) for field in fields]
    lines = [
        "\t".join([encode(value) for encode, value in zip(encoders, row, strict=True)])
        for row in rows
    ]
    lines.append("")
    return "\n".join(lines)


def escape(text: str) -> str:
    """`text` as a COPY text value (no escape needed is the common case: four C scans)."""
    if "\\" in text:
        text = text.replace("\\", "\\\\")
    if "\t" in text:
        text = text.replace("\t", "\\t")
    if "\n" in text:
        text = text.replace("\n", "\\n")
    if "\r" in text:
        text = text.replace("\r", "\\r")
    return text


def _text(value: Any) -> str:
    if value is None:
        return NULL
    return escape(value if type(value) is str else str(value))


_dumps = json.JSONEncoder().encode


def _json(value: Any) -> str:
    # JSON text escapes every control character itself: only its backslashes need doubling.
    text = _dumps(value)
    return text.replace("\\", "\\\\") if "\\" in text else text


def _json_or_null(value: Any) -> str:
    # A nullable JSON column stores None as SQL NULL, as Django's JSONField does.
    return NULL if value is None else _json(value)


def _integer(value: Any) -> str:
    if value is None:
        return NULL
    return str(value) if type(value) is int else str(int(value))


def _decimal(value: Any) -> str:
    if value is None:
        return NULL
    if not isinstance(value, Decimal):
        value = Decimal(str(value))
    return str(value)


def _boolean(value: Any) -> str:
    if value is None:
        return NULL
    return "t" if value else "f"


def _moment(value: Any) -> str:
    if value is None:
        return NULL
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        # As Django stores it: a naive moment is read in the default time zone.
        value = timezone.make_aware(value, timezone.get_default_timezone())
    return str(value.isoformat())


def _binary(value: Any) -> str:
    if value is None:
        return NULL
    return "\\\\x" + bytes(value).hex()


def _float(value: Any) -> str:
    if value is None:
        return NULL
    number = float(value)
    if number != number:
        return "NaN"
    if number in (float("inf"), float("-inf")):
        return "Infinity" if number > 0 else "-Infinity"
    return repr(number)


def _uuid(value: Any) -> str:
    if value is None:
        return NULL
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))


def _encoder_for(field: models.Field) -> Encoder:
    if isinstance(field, models.JSONField):
        return _json_or_null if field.null else _json
    if isinstance(field, models.BooleanField):
        return _boolean
    if isinstance(field, models.DecimalField):
        return _decimal
    if isinstance(field, models.DateTimeField | models.DateField | models.TimeField):
        return _moment
    if isinstance(field, models.UUIDField):
        return _uuid
    if isinstance(field, models.BinaryField):
        return _binary
    if isinstance(field, models.FloatField):
        return _float
    if isinstance(field, models.ForeignKey):
        return _encoder_for(field.target_field)
    if isinstance(field, models.IntegerField | models.AutoField):
        return _integer
    return _text


def _with_defaults(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> tuple[list[str], Sequence[Sequence[Any]]]:
    """Add every concrete column the caller did not give, with its model default (evaluated per
    row when callable), so a column added to the model later is filled as `bulk_create` would."""
    given = set(columns)
    missing = [
        field
        for field in model._meta.concrete_fields
        if field.attname not in given and not field.primary_key
    ]
    if not missing:
        return list(columns), rows
    now = timezone.now()

    def default(field: models.Field) -> Any:
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            return now
        return field.get_default()

    per_row = [field for field in missing if field.has_default() and callable(field.default)]
    fixed = [default(field) for field in missing if field not in per_row]
    constant = [field for field in missing if field not in per_row]
    names = [*columns, *(f.attname for f in constant), *(f.attname for f in per_row)]
    return names, [(*row, *fixed, *(default(f) for f in per_row)) for row in rows]


def _fallback(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    json_columns: set[int],
    returning: bool,
    upsert_on: Sequence[str],
) -> list[int]:
    objects = [model(**dict(zip(columns, row, strict=True))) for row in rows]
    if upsert_on:
        model._default_manager.bulk_create(
            objects,
            update_conflicts=True,
            unique_fields=list(upsert_on),
            update_fields=[name for name in columns if name not in upsert_on],
            batch_size=500,
        )
    else:
        model._default_manager.bulk_create(objects, batch_size=500)
    return [obj.pk for obj in objects] if returning else []


class AnyOf(Func):
    """`<field> = ANY(%s)` with the values as ONE array parameter: a filter on thousands of ids
    or references (`.filter(AnyOf("pk", ids))`). Django's `__in` builds one placeholder per
    value and inspects each for an expression (~2 µs a value), which for a sweep's batch cost
    more than the query; here the driver renders the array in C. (SQLite: a plain `IN`.)"""

    conditional = True
    output_field = models.BooleanField()

    def __init__(self, field: str, values: Iterable[Any]) -> None:
        super().__init__(F(field))
        self.values = list(values)

    def as_sql(self, compiler, connection, **extra_context):
        lhs, params = compiler.compile(self.source_expressions[0])
        if not self.values:
            return "1 = 0", ()
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s)", (*params, self.values)
        return f"{lhs} IN ({', '.join(['%s'] * len(self.values))})", (*params, *self.values)


def update_claimed_in_groups(
    model: type[models.Model],
    rows: Sequence[tuple[int, str, dict[str, Any]]],
    *,
    also: dict[str, Any] | None = None,
) -> None:
    """Write (pk, from status, changes) for rows a sweep holds locked: one compare-and-swap
    `UPDATE … WHERE id IN (…) AND status = <from>` per set of identical changes (plus `also` on
    every row). Each row must still be where the claim saw it; anything else is a bug, so it
    raises and the caller's batch rolls back."""
    groups: dict[tuple[str, tuple[tuple[str, Any], ...]], list[int]] = defaultdict(list)
    for pk, from_status, changes in rows:
        groups[(from_status, tuple(sorted(changes.items())))].append(pk)
    for (from_status, changes_key), ids in groups.items():
        updated = model._default_manager.filter(AnyOf("pk", ids), status=from_status).update(
            **dict(changes_key), **(also or {})
        )
        if updated != len(ids):
            raise RuntimeError(
                f"{len(ids) - updated} claimed {model._meta.verbose_name_plural} changed under "
                "the sweep."
            )


# --- a few new rows that point at each other, in one statement --------------------------------


class NewId:
    """The value a column of `of` (an unsaved instance written by the same `insert_linked`) gets
    on insert: its primary key, or another column it returns (an id it drew by `NextId`)."""

    def __init__(self, of: models.Model, column: str = "") -> None:
        self.of = of
        self.column = column

    def __repr__(self) -> str:
        return f"NewId({type(self.of).__name__}, {self.column or 'pk'})"


class NextId:
    """A fresh value of `model`'s primary key sequence, drawn by the INSERT itself: for a row
    that must point at another row written after it in the same statement (a circular pair, such
    as an order and its current contract version; the foreign key is checked at commit)."""

    def __init__(self, model: type[models.Model]) -> None:
        self.model = model

    def __repr__(self) -> str:
        return f"NextId({self.model.__name__})"


def insert_linked(objects: Sequence[models.Model]) -> None:
    """Save unsaved model instances with ONE statement, in the order given, each an INSERT in a
    `WITH` clause: `WITH s0 AS (INSERT … RETURNING …), s1 AS (INSERT … VALUES ((SELECT id FROM
    s0), …) RETURNING …) SELECT …`.

    A column whose value is `NewId(other)` takes the id `other` gets in the same statement (an
    order's timeline row, a version's lines); `NextId(Model)` draws an id from `Model`'s sequence
    for a row written later in the statement, which then takes it as `NewId(obj, column)`. Each
    value is prepared by its field as `save()` prepares it (`auto_now`, JSON); afterwards every
    instance holds its primary key and the ids it pointed at, and counts as saved. Like
    `bulk_create`, it calls no `save()` method and sends no signals. For the few
    rows of one operation (not thousands: see `bulk_insert`). PostgreSQL only; elsewhere the
    instances are saved one by one (which needs no `NextId`).
    """
    if connection.vendor != "postgresql":
        _insert_linked_one_by_one(objects)
        return
    index = {id(obj): n for n, obj in enumerate(objects)}
    returned: list[list[str]] = [[str(type(obj)._meta.pk.attname)] for obj in objects]
    inserts: list[str] = []
    params: list[Any] = []
    quote = connection.ops.quote_name

    def ref(value: NewId) -> str:
        n = index[id(value.of)]
        column = value.column or str(type(value.of)._meta.pk.attname)
        if column not in returned[n]:
            returned[n].append(column)
        return f"(SELECT {quote(_column(value.of, column))} FROM s{n})"

    for n, obj in enumerate(objects):
        meta = type(obj)._meta
        columns, values = [], []
        for field in meta.concrete_fields:
            raw = getattr(obj, field.attname)
            if field.primary_key and raw is None:
                continue  # drawn by the table's own identity
            columns.append(quote(str(field.column)))
            if isinstance(raw, NewId):
                if index.get(id(raw.of), n) >= n:
                    raise ValueError(f"{raw!r} must point at a row written before it.")
                values.append(ref(raw))
            elif isinstance(raw, NextId):
                table = raw.model._meta.db_table
                column = str(raw.model._meta.pk.column)
                values.append(f"nextval(pg_get_serial_sequence('{quote(table)}', '{column}'))")
                returned[n].append(field.attname)
            else:
                values.append("%s")
                params.append(
                    field.get_db_prep_save(field.pre_save(obj, add=True), connection=connection)
                )
        inserts.append(
            f"INSERT INTO {quote(meta.db_table)} ({', '.join(columns)}) "
            f"VALUES ({', '.join(values)})"
        )
    # What each INSERT returns is known once every later row has said what it points at.
    ctes = [
        f"s{n} AS ({insert} RETURNING "
        + ", ".join(quote(_column(objects[n], name)) for name in names)
        + ")"
        for n, (insert, names) in enumerate(zip(inserts, returned, strict=True))
    ]
    selected = [
        f"(SELECT {quote(_column(objects[n], name))} FROM s{n})"
        for n, names in enumerate(returned)
        for name in names
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {', '.join(ctes)} SELECT {', '.join(selected)}", params)
        row = iter(cursor.fetchone())
    for obj, names in zip(objects, returned, strict=True):
        for name in names:
            setattr(obj, name, next(row))
    for obj in objects:  # an id another row pointed at is now known
        for field in type(obj)._meta.concrete_fields:
            value = getattr(obj, field.attname)
            if isinstance(value, NewId):
                setattr(obj, field.attname, getattr(value.of, value.column or "pk"))
        obj._state.adding = False
        obj._state.db = connection.alias


def _column(obj: models.Model, attname: str) -> str:
    """The database column of a field given by attname (`order_id`) or name."""
    field = type(obj)._meta.get_field(attname)
    assert isinstance(field, models.Field)  # a concrete column, not a reverse relation
    return str(field.column)


def _insert_linked_one_by_one(objects: Sequence[models.Model]) -> None:
    for obj in objects:
        for field in type(obj)._meta.concrete_fields:
            value = getattr(obj, field.attname)
            if isinstance(value, NextId):
                raise ValueError("NextId needs PostgreSQL.")
            if isinstance(value, NewId):
                setattr(obj, field.attname, getattr(value.of, value.column or "pk"))
        obj.save(force_insert=True)
