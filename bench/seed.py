"""Seed the bench database at scale: a few hundred orders through the services, then copies.

Suppliers, buyers and products are written in bulk (one precomputed password hash: the real
hasher costs half a second a user). Template orders of every status are driven through their
lifecycle by the same builders the tests use (tests/orders/factories.py,
tests/disputes/factories.py), then bench.graphcopy copies their row graphs to reach the target
count. `ledger_check` and an integrity query must pass afterwards.
"""

from __future__ import annotations

import itertools
import time
from contextlib import contextmanager
from decimal import Decimal

from django.db import connection, transaction

from bench.config import Scale
from bench.graphcopy import Buyer, collect, copy_graph

ORDER_STATUSES = [
    "pending_confirmation",
    "awaiting_payment",
    "in_production",
    "awaiting_balance",
    "ready_to_ship",
    "shipped",
    "delivered",
    "completed",
    "completed",
    "completed",
    "cancelled",
    "refunded",
    "disputed",
]
BIG_LIMIT = Decimal("100000000.00")


def _password_hash() -> str:
    from django.contrib.auth.hashers import make_password

    return make_password("bench-password")


def people(scale: Scale) -> dict:
    """Suppliers (with one staff user each), buyer organisations with a buyer each, products."""
    from accounts.models import Organisation, User
    from suppliers.models import Product, Supplier
    from tests.suppliers.factories import TradeAssuredSupplierFactory

    password = _password_hash()
    suppliers: list[Supplier] = [
        TradeAssuredSupplierFactory(ta_limit_usd=BIG_LIMIT, legal_name=f"Bench supplier {n}")
        for n in range(scale.suppliers)
    ]
    User.objects.bulk_create(
        User(
            email=f"staff{n}@bench-supplier.example",
            full_name=f"Supplier staff {n}",
            role=User.Role.SUPPLIER_STAFF,
            organisation_id=supplier.organisation_id,
            password=password,
        )
        for n, supplier in enumerate(suppliers)
    )
    organisations = Organisation.objects.bulk_create(
        Organisation(name=f"Bench buyer {n}", kind=Organisation.Kind.BUYER, country="GB")
        for n in range(scale.buyers)
    )
    buyers = User.objects.bulk_create(
        User(
            email=f"buyer{n}@bench-buyer.example",
            full_name=f"Buyer {n}",
            role=User.Role.BUYER,
            organisation_id=organisation.pk,
            password=password,
        )
        for n, organisation in enumerate(organisations)
    )
    Product.objects.bulk_create(
        (
            Product(
                supplier=suppliers[n % len(suppliers)],
                name=f"Bench product {n}",
                unit_price=Decimal("12.50"),
                description="A product for the bench.",
            )
            for n in range(scale.products)
        ),
        batch_size=2000,
    )
    return {"suppliers": suppliers, "buyers": buyers}


def build(status: str, *, buyer, supplier):
    """One order in `status`, driven there through the services (as the tests do)."""
    from tests.disputes.factories import open_dispute, parties_for
    from tests.orders.factories import order_in

    if status == "disputed":
        parties = parties_for("delivered", buyer=buyer, supplier=supplier)
        return open_dispute(parties).order
    return order_in(status, buyer=buyer, supplier=supplier)


def templates(scale: Scale, cast: dict, statuses: list[str], count: int, offset: int = 0) -> list:
    suppliers, buyers = cast["suppliers"], cast["buyers"]
    cycle = itertools.cycle(statuses)
    return [
        build(
            next(cycle),
            buyer=buyers[(offset + n) % len(buyers)],
            supplier=suppliers[(offset + n) % len(suppliers)],
        )
        for n in range(count)
    ]


def copy_orders(template_orders: list, total: int, buyers: list) -> int:
    """Copy the templates' graphs until there are about `total` orders of theirs; returns copies."""
    count = len(template_orders)
    copies = max(0, -(-(total - count) // count))
    if copies == 0:
        return 0
    rows = collect([order.pk for order in template_orders])
    pool = [Buyer(user_id=b.pk, organisation_id=b.organisation_id) for b in buyers]
    buyers_for: dict[int, list[Buyer]] = {}
    for index, order in enumerate(template_orders):
        buyers_for.setdefault(
            order.buyer_id,
            [pool[(index + k * count) % len(pool)] for k in range(1, copies + 1)],
        )
    copy_graph(rows, copies, buyers_for)
    return copies


def integrity() -> list[str]:
    """Cross-table facts every order must satisfy; a list of problems (empty when sound)."""
    checks = {
        "orders without their escrow": """
            SELECT count(*) FROM orders_order o LEFT JOIN payments_escrow e
            ON e.reference = 'order:' || o.id WHERE e.id IS NULL AND o.confirmed_at IS NOT NULL""",
        "orders whose current version is another order's": """
            SELECT count(*) FROM orders_order o JOIN orders_contractversion v
            ON v.id = o.current_version_id WHERE v.order_id <> o.id""",
        "orders without events": """
            SELECT count(*) FROM orders_order o WHERE NOT EXISTS
            (SELECT 1 FROM orders_orderevent e WHERE e.order_id = o.id)""",
        "orders whose buyer is not of the buyer organisation": """
            SELECT count(*) FROM orders_order o JOIN accounts_user u ON u.id = o.buyer_id
            WHERE u.organisation_id <> o.buyer_organisation_id""",
        "escrow accounts of another escrow": """
            SELECT count(*) FROM payments_account a JOIN payments_escrow e ON e.id = a.escrow_id
            WHERE a.key NOT LIKE '%:' || e.reference""",
    }
    problems = []
    with connection.cursor() as cursor:
        for name, sql in checks.items():
            cursor.execute(sql)
            found = cursor.fetchone()[0]
            if found:
                problems.append(f"{found} {name}")
    return problems


def ledger_check() -> None:
    from django.core.management import call_command

    call_command("ledger_check", stdout=_Quiet())


class _Quiet:
    def write(self, *_args, **_kwargs) -> None:
        pass


def sessions_and_keys(buyer) -> dict:
    """A session cookie and an API key for the buyer under test."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from tradeassure.platform.api.services import api_key_create

    session = SessionStore()
    session[SESSION_KEY] = str(buyer.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = buyer.get_session_auth_hash()
    session.create()
    _, raw_key = api_key_create(actor=buyer, name="bench")
    return {
        "cookie": f"{settings.SESSION_COOKIE_NAME}={session.session_key}",
        "api_key": raw_key,
    }


@contextmanager
def eager_tasks():
    """Run queued tasks in-process while building (as the tests do): no worker in the bench."""
    from tradeassure.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    try:
        yield
    finally:
        app.conf.task_always_eager = False


def seed(scale: Scale, log=print) -> dict:
    """Everything the scenarios need; returns the fixture (ids, keys, counts, seconds)."""
    from django.conf import settings

    from orders.models import Order

    # Factories set passwords on the few users they make; the bulk users share one hash.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    started = time.perf_counter()
    with transaction.atomic():
        cast = people(scale)
    log(f"  people: {time.perf_counter() - started:.1f}s")
    step = time.perf_counter()
    with eager_tasks():
        built = templates(scale, cast, ORDER_STATUSES, scale.templates)
    log(f"  {len(built)} template orders through the services: {time.perf_counter() - step:.1f}s")
    step = time.perf_counter()
    copies = copy_orders(built, scale.orders, cast["buyers"])
    log(f"  copied x{copies}: {time.perf_counter() - step:.1f}s")
    step = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    problems = integrity()
    if problems:
        raise SystemExit("Seed integrity check failed: " + "; ".join(problems))
    ledger_check()
    log(f"  ledger_check + integrity: {time.perf_counter() - step:.1f}s")
    buyer = cast["buyers"][0]
    buyer_orders = list(
        Order.objects.filter(buyer_organisation_id=buyer.organisation_id).values_list(
            "pk", flat=True
        )
    )
    fixture = {
        "orders": Order.objects.count(),
        "templates": len(built),
        "buyer_id": buyer.pk,
        "buyer_orders": len(buyer_orders),
        "order_id": buyer_orders[0],
        "supplier_ids": [s.pk for s in cast["suppliers"]],
        "seed_seconds": round(time.perf_counter() - started, 1),
        **sessions_and_keys(buyer),
    }
    return fixture
