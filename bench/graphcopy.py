"""Copy the row graphs of template orders in bulk, with fresh ids and references.

A few hundred orders are built through the real services; building 50,000 that way would take
an hour. Instead every row that belongs to a template order (its versions, line items, events,
escrow, escrow accounts, ledger transactions and entries, payments, provider events, shipments,
disputes and their children, the supplier's order record) is copied K times by one
`INSERT … SELECT … CROSS JOIN generate_series(1, K)` per table, in PostgreSQL. Each copy gets:

- dense new primary keys above the table's current maximum (sequences are moved past them);
- foreign keys into the graph remapped to the same copy's rows, others kept (shared accounts,
  suppliers, staff users);
- the buyer (user and organisation) swapped for one from a pool, per copy;
- references that embed the order id rebuilt ("order:<id>", "TA-<id>", account keys), other
  unique strings suffixed with "~<copy>", UUIDs regenerated.

Then cached account balances are recomputed from the entries, so `ledger_check` holds.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from django.apps import apps
from django.db import connection, models, transaction

GRAPH_APPS = ("orders", "payments", "disputes")
# Not copied: the supplier-wide ledger accounts are not copied either, and every cache is
# recomputed from the copied entries (copy_graph), so nothing is left unfolded.
NOT_COPIED = ("payments.UnfoldedEntry",)
# Forward foreign keys that pull the target row into the graph (a row owned by one order).
OWNED_TARGETS = (
    "payments.ProviderEvent",
    "payments.Payment",
    "payments.Refund",
    "payments.LedgerTransaction",
)
# Columns that embed an order id: (extract the old order id, rebuild from NEW).
ORDER_REFERENCES = {
    ("payments.Escrow", "reference"): (
        r"substring(t.{col} from '^order:(\d+)$')::bigint",
        "'order:' || {new}",
    ),
    ("payments.Account", "key"): (
        r"substring(t.{col} from ':order:(\d+)$')::bigint",
        r"coalesce(substring(t.{col} from '^(.*:)order:\d+$') || 'order:' || {new}, t.{col})",
    ),
    ("suppliers.SupplierOrderRecord", "order_reference"): (
        r"substring(t.{col} from '^TA-(\d+)$')::bigint",
        "'TA-' || lpad(({new})::text, 6, '0')",
    ),
}
SHORT_UNIQUE = {("payments.Escrow", "bank_reference"): "'BX' || ({pk})::text"}


@dataclass
class Buyer:
    user_id: int
    organisation_id: int


def _copy_rows(cursor, table: str, values: list[tuple], *, swap: bool = False) -> None:
    """COPY rows into a table (psycopg2's copy_from); `swap` turns (idx, old) into (old, idx)."""
    buffer = io.StringIO()
    for row in values:
        row = (row[1], row[0]) if swap else row
        buffer.write("\t".join(str(v) for v in row) + "\n")
    buffer.seek(0)
    cursor.cursor.copy_from(buffer, table)


def _label(model: type[models.Model]) -> str:
    return model._meta.label


def collect(order_ids: Sequence[int]) -> dict[type[models.Model], set[int]]:
    """Every row of the graph of these orders, by model (walks reverse foreign keys)."""
    from orders.models import Order
    from payments.models import Escrow
    from suppliers.models import SupplierOrderRecord

    rows: dict[type[models.Model], set[int]] = defaultdict(set)
    rows[Order] = set(order_ids)
    rows[Escrow] = set(
        Escrow.objects.filter(reference__in=[f"order:{pk}" for pk in order_ids]).values_list(
            "pk", flat=True
        )
    )
    rows[SupplierOrderRecord] = set(
        SupplierOrderRecord.objects.filter(
            order_reference__in=[f"TA-{pk:06d}" for pk in order_ids]
        ).values_list("pk", flat=True)
    )
    graph_models = [
        m
        for app in GRAPH_APPS
        for m in apps.get_app_config(app).get_models()
        if not m._meta.proxy and m._meta.label not in NOT_COPIED
    ]
    owned = {apps.get_model(label) for label in OWNED_TARGETS}
    changed = True
    while changed:
        changed = False
        for model in graph_models:
            manager = model._default_manager
            for field in model._meta.concrete_fields:
                if not field.is_relation or field.related_model is None:
                    continue
                target = field.related_model
                if rows.get(target):  # rows of `model` that point into the graph
                    found = set(
                        manager.filter(**{f"{field.attname}__in": rows[target]}).values_list(
                            "pk", flat=True
                        )
                    )
                    if found - rows[model]:
                        rows[model] |= found
                        changed = True
                if target in owned and rows.get(model):  # rows the graph points at and owns
                    found = {
                        value
                        for value in manager.filter(pk__in=rows[model]).values_list(
                            field.attname, flat=True
                        )
                        if value is not None
                    }
                    if found - rows[target]:
                        rows[target] |= found
                        changed = True
    return {m: ids for m, ids in rows.items() if ids}


def _unique_strings(model: type[models.Model]) -> set[str]:
    names = {
        f.name
        for f in model._meta.concrete_fields
        if f.unique and not f.primary_key and not f.is_relation
    }
    for constraint in model._meta.constraints:
        if isinstance(constraint, models.UniqueConstraint):
            fields = [model._meta.get_field(n) for n in constraint.fields]
            if not any(f.is_relation for f in fields):
                names |= {f.name for f in fields}
    return names


def copy_graph(
    rows: dict[type[models.Model], set[int]],
    copies: int,
    buyers_for: dict[int, list[Buyer]],
) -> dict[type[models.Model], tuple[int, int]]:
    """Insert `copies` copies of the collected rows; returns {model: (first new id, count)}.

    `buyers_for[old buyer user id]` gives, per copy k (1-based, index k-1), the buyer to use.
    """
    from accounts.models import Organisation, User
    from orders.models import Order

    maps: dict[type[models.Model], tuple[str, int, int]] = {}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")
        # Copied as plain rows, without the ledger's row triggers (each entry would otherwise
        # update its account's cached balance one by one). Copies are checked as a whole
        # instead: the bounded accounts' balances are recomputed below and the seeder runs
        # ledger_check and its integrity query.
        cursor.execute("SET LOCAL session_replication_role = replica")
        for model, ids in rows.items():
            table = f"bench_map_{model._meta.db_table}"
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
            cursor.execute(f"CREATE TEMP TABLE {table} (old bigint PRIMARY KEY, idx int)")
            ordered = sorted(ids)
            _copy_rows(cursor, table, list(enumerate(ordered)), swap=True)
            cursor.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {model._meta.db_table}")
            base = cursor.fetchone()[0]
            maps[model] = (table, base, len(ordered))
        cursor.execute("DROP TABLE IF EXISTS bench_buyer_map")
        cursor.execute(
            "CREATE TEMP TABLE bench_buyer_map (k int, old_user bigint, new_user bigint, "
            "old_org bigint, new_org bigint, PRIMARY KEY (k, old_user))"
        )
        old_orgs = dict(User.objects.filter(pk__in=buyers_for).values_list("pk", "organisation_id"))
        values = [
            (k + 1, old, b.user_id, old_orgs[old], b.organisation_id)
            for old, pool in buyers_for.items()
            for k, b in enumerate(pool[:copies])
        ]
        _copy_rows(cursor, "bench_buyer_map", values)
        cursor.execute("CREATE INDEX ON bench_buyer_map (k, old_org)")
        cursor.execute("ANALYZE bench_buyer_map")

        def new_id(model: type[models.Model], alias: str) -> str:
            _, base, count = maps[model]
            return f"({base} + (k.k - 1) * {count} + {alias}.idx)"

        order_table, _, _ = maps[Order]
        for model in rows:
            table = model._meta.db_table
            joins = [f"JOIN {maps[model][0]} m0 ON m0.old = t.id"]
            columns, exprs = [], []
            unique = _unique_strings(model)
            for n, field in enumerate(model._meta.concrete_fields):
                col = field.column
                columns.append(f'"{col}"')
                label = (_label(model), field.name)
                if field.primary_key:
                    exprs.append(new_id(model, "m0"))
                elif field.is_relation and field.related_model in maps:
                    alias = f"m{n + 1}"
                    joins.append(
                        f"LEFT JOIN {maps[field.related_model][0]} {alias} ON {alias}.old = t.{col}"
                    )
                    exprs.append(
                        f"CASE WHEN {alias}.old IS NULL THEN t.{col} "
                        f"ELSE {new_id(field.related_model, alias)} END"
                    )
                elif field.is_relation and field.related_model is User:
                    alias = f"u{n + 1}"
                    joins.append(
                        f"LEFT JOIN bench_buyer_map {alias} "
                        f"ON {alias}.k = k.k AND {alias}.old_user = t.{col}"
                    )
                    exprs.append(f"coalesce({alias}.new_user, t.{col})")
                elif field.is_relation and field.related_model is Organisation:
                    alias = f"o{n + 1}"
                    joins.append(
                        f"LEFT JOIN (SELECT DISTINCT k, old_org, new_org FROM "
                        f"bench_buyer_map) {alias} "
                        f"ON {alias}.k = k.k AND {alias}.old_org = t.{col}"
                    )
                    exprs.append(f"coalesce({alias}.new_org, t.{col})")
                elif label in ORDER_REFERENCES:
                    extract, build = ORDER_REFERENCES[label]
                    alias = f"r{n + 1}"
                    joins.append(
                        f"LEFT JOIN {order_table} {alias} "
                        f"ON {alias}.old = {extract.format(col=col)}"
                    )
                    rebuilt = build.format(col=col, new=new_id(Order, alias))
                    exprs.append(
                        f"CASE WHEN {alias}.old IS NULL THEN t.{col} || '~' || k.k "
                        f"ELSE {rebuilt} END"
                    )
                elif label in SHORT_UNIQUE:
                    exprs.append(SHORT_UNIQUE[label].format(pk=new_id(model, "m0")))
                elif isinstance(field, models.UUIDField):
                    exprs.append("gen_random_uuid()")
                elif field.name in unique or label == (
                    "payments.ProviderEvent",
                    "object_reference",
                ):
                    exprs.append(
                        f"CASE WHEN t.{col} = '' THEN t.{col} ELSE t.{col} || '~' || k.k END"
                    )
                else:
                    exprs.append(f"t.{col}")
            sql = (
                f'INSERT INTO "{table}" ({", ".join(columns)}) SELECT {", ".join(exprs)} '
                f'FROM "{table}" t CROSS JOIN generate_series(1, {copies}) AS k(k) '
                + " ".join(joins)
            )
            cursor.execute(sql)
        for model in rows:
            table = model._meta.db_table
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f'(SELECT max(id) FROM "{table}"))'
            )
        # Every cache holds all of its account's entries (the templates' unfolded ones too).
        cursor.execute("DELETE FROM payments_unfoldedentry")
        cursor.execute(
            "UPDATE payments_account a SET balance = s.total FROM (SELECT account_id, "
            "sum(amount) AS total FROM payments_entry GROUP BY account_id) s "
            "WHERE a.id = s.account_id AND a.rule IN ('non_negative', 'non_positive') "
            "AND a.balance <> s.total"
        )
    return {model: (base, count * copies) for model, (_, base, count) in maps.items()}
