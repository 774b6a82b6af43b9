"""In-process scenarios against the seeded database: sweeps, ledger, outbox, dispute filing.

They call the real services and tasks. Sweeps run under a wall-clock limit delivered the way a
Celery worker delivers its soft time limit (SoftTimeLimitExceeded raised in the running code),
so a row the sweep records as failed because the limit struck is counted.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import statistics
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlparse

from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from bench.config import LEDGER_PROCESSES, THREADS, Scale
from bench.seed import copy_orders, eager_tasks, templates


class HardTimeLimit(BaseException):
    """The worker's hard limit: not an Exception, so no `except Exception` in a sweep stops it."""


HARD_AFTER_SOFT_S = 5.0
# The target: a backlog cleared within 60 s of wall time by the beat task, run after run.
SWEEP_BUDGET_S = 60.0


@contextmanager
def time_limit(seconds: float, struck: list[str]):
    """Celery's two limits, in this (main) thread: SoftTimeLimitExceeded after `seconds`, then a
    hard stop HARD_AFTER_SOFT_S later if the code swallowed the soft one. `struck` records which."""

    def strike(_signum, _frame):
        if not struck:
            struck.append("soft")
            signal.setitimer(signal.ITIMER_REAL, HARD_AFTER_SOFT_S)
            raise SoftTimeLimitExceeded(f"bench soft limit of {seconds}s")
        struck.append("hard")
        raise HardTimeLimit(f"bench hard limit of {seconds + HARD_AFTER_SOFT_S}s")

    previous = signal.signal(signal.SIGALRM, strike)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Sweep:
    name: str
    task: str  # dotted path of the beat task
    status: str  # template orders are built in this status
    due_field: str
    dispute: bool = False


SWEEPS = [
    Sweep("sweep confirmation timeouts", "orders.tasks.sweep_confirmation_timeouts",
          "pending_confirmation", "confirmation_due_at"),
    Sweep("sweep payment timeouts", "orders.tasks.sweep_payment_timeouts", "awaiting_payment",
          "payment_due_at"),
    Sweep("sweep shipment deadlines", "orders.tasks.sweep_shipment_deadlines", "in_production",
          "shipment_due_at"),
    Sweep("sweep receipt windows", "orders.tasks.sweep_receipt_windows", "shipped",
          "receipt_due_at"),
    Sweep("sweep post-delivery windows", "orders.tasks.sweep_post_delivery_windows", "delivered",
          "completion_due_at"),
    Sweep("sweep dispute escalations", "disputes.tasks.sweep_escalations", "disputed",
          "supplier_response_due_at", dispute=True),
]  # fmt: skip


def _cast(fixture: dict) -> dict:
    from accounts.models import User
    from suppliers.models import Supplier

    buyers = list(User.objects.filter(email__endswith="@bench-buyer.example").order_by("pk"))
    suppliers = list(Supplier.objects.filter(pk__in=fixture["supplier_ids"]).order_by("pk"))
    return {"buyers": buyers, "suppliers": suppliers}


def _counts() -> dict[str, int]:
    from disputes.models import DisputeEvent
    from orders.models import OrderEvent
    from tradeassure.platform.models import DomainEvent, Notification, OutboxMessage

    return {
        "events": OrderEvent.objects.count() + DisputeEvent.objects.count(),
        "domain_events": DomainEvent.objects.count(),
        "notifications": Notification.objects.count(),
        "outbox": OutboxMessage.objects.count(),
    }


def bare_updates(seconds: float) -> float:
    """The sweeps' floor: committed single-row updates of the floor's table, per second."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM floor_floororder ORDER BY id LIMIT 20000")
        ids = [row[0] for row in cursor.fetchall()]
        done = 0
        started = time.perf_counter()
        for pk in ids:
            cursor.execute("UPDATE floor_floororder SET status = 'cancelled' WHERE id = %s", [pk])
            done += 1
            if time.perf_counter() - started > seconds:
                break
        return done / (time.perf_counter() - started)


def bare_set_updates(seconds: float, batch: int = 1000) -> float:
    """Not the floor, for reference: the same rows updated set-based, `batch` per committed
    `UPDATE … WHERE id = ANY(…)`, per second (what a sweep's own status UPDATE costs alone)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM floor_floororder ORDER BY id LIMIT 20000")
        ids = [row[0] for row in cursor.fetchall()]
        done = 0
        started = time.perf_counter()
        for start in range(0, len(ids), batch):
            chunk = ids[start : start + batch]
            cursor.execute(
                "UPDATE floor_floororder SET status = 'cancelled' WHERE id = ANY(%s)", [chunk]
            )
            done += len(chunk)
            if time.perf_counter() - started > seconds:
                break
        return done / (time.perf_counter() - started)


def _profiler():
    """BENCH_PROFILE=1: profile the sweeps (cProfile; slows them down, so the rates of a
    profiled run are not comparable) and print where the time went."""
    import os

    if not os.environ.get("BENCH_PROFILE"):
        return None
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    return profiler


def _profile_report(profiler, name: str) -> None:
    if profiler is None:
        return
    import io
    import pstats

    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(35)
    print(f"--- profile of {name} ---\n{out.getvalue()}")


def run_sweep(
    sweep: Sweep, scale: Scale, fixture: dict, cast: dict, floor: float | Callable[[], float]
) -> dict:
    """One sweep scenario; `floor` is the floor's rate, or how to measure it (then it is measured
    after the setup, right before the timed runs, with the set-based reference beside it)."""
    from django.utils.module_loading import import_string

    from disputes.models import Dispute
    from orders.models import Order
    from tradeassure.core import clock
    from tradeassure.platform.models import OutboxMessage, SystemAlert

    rows = scale.dispute_sweep_rows if sweep.dispute else scale.sweep_rows
    step = time.perf_counter()
    # The side effects earlier scenarios queued (nothing consumes them here) are not this
    # scenario's: without this, building its templates with eager tasks would deliver them all.
    OutboxMessage.objects.filter(status="pending").update(status="sent")
    # Each sweep builds its templates with suppliers of its own: the copies stay with their
    # template's supplier, and building a template runs that supplier's tasks eagerly (metrics
    # over all its orders), so reusing one sweep's suppliers made the next setup 50x slower.
    offset = 7 + scale.sweep_templates * SWEEPS.index(sweep)
    with eager_tasks():
        built = templates(scale, cast, [sweep.status], scale.sweep_templates, offset=offset)
    template_ids = [order.pk for order in built]
    before_max = Order.objects.order_by("-pk").values_list("pk", flat=True).first()
    copy_orders(built, rows, cast["buyers"])
    pool = Order.objects.filter(pk__in=template_ids) | Order.objects.filter(pk__gt=before_max)
    past = clock.now() - timedelta(minutes=1)
    if sweep.dispute:
        due = Dispute.objects.filter(order__in=pool, status="awaiting_supplier")
        due_ids = list(due.values_list("pk", flat=True))
        Dispute.objects.filter(pk__in=due_ids).update(supplier_response_due_at=past)
        remaining = Dispute.objects.filter(pk__in=due_ids, status="awaiting_supplier")
    else:
        due_ids = list(pool.filter(status=sweep.status).values_list("pk", flat=True))
        Order.objects.filter(pk__in=due_ids).update(**{sweep.due_field: past})
        remaining = Order.objects.filter(pk__in=due_ids, **{f"{sweep.due_field}__isnull": False})
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE orders_order")
        cursor.execute("ANALYZE disputes_dispute")
    setup_s = time.perf_counter() - step
    task = import_string(sweep.task)
    last_alert = SystemAlert.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    counts_before = _counts()
    set_rate = None
    if callable(floor):
        floor_rate = floor()
        set_rate = bare_set_updates(min(3.0, scale.sweep_cap_s))
    else:
        floor_rate = floor
    # The beat task as a worker runs it (`apply()`: Celery's tracer, the task's own code path),
    # under a soft limit of `sweep_cap_s` per run; a run the limit stopped is followed at once by
    # the next one (the next beat tick), until the rows are cleared or SWEEP_BUDGET_S is spent.
    profiler = _profiler()
    started = time.perf_counter()
    struck: list[str] = []
    runs, task_failures = 0, 0
    while remaining.exists():
        left = SWEEP_BUDGET_S - (time.perf_counter() - started)
        if left <= 0:
            break
        run_struck: list[str] = []
        try:
            with time_limit(min(scale.sweep_cap_s, left), run_struck):
                result = task.apply()
            task_failures += 0 if result.successful() else 1
        except (SoftTimeLimitExceeded, HardTimeLimit):
            pass
        connection.close()  # a hard stop may have left the connection mid-transaction
        runs += 1
        struck += run_struck
        if not run_struck:  # the run ended by itself: whatever is left it could not take
            break
    elapsed = time.perf_counter() - started
    _profile_report(profiler, sweep.name)
    limit_struck = "+".join(struck)
    done = len(due_ids) - remaining.count()
    counts = {k: v - counts_before[k] for k, v in _counts().items()}
    alerts = list(SystemAlert.objects.filter(pk__gt=last_alert))
    failed_by_limit = sum("SoftTimeLimit" in alert.message for alert in alerts)
    rate = done / elapsed if elapsed else 0
    cleared = done == len(due_ids)
    to_clear = elapsed if cleared else (len(due_ids) / rate if rate else float("inf"))
    return {
        "name": sweep.name,
        "kind": "sweep",
        "due_rows": len(due_ids),
        "done": done,
        "seconds": round(elapsed, 2),
        "per_s": round(rate, 1),
        "cleared": cleared,
        "runs": runs,
        "task_failures": task_failures,
        "limit_struck": limit_struck,
        "seconds_to_clear": round(to_clear, 1),
        "failed_alerts": len(alerts),
        "failed_by_time_limit": failed_by_limit,
        "errors": len(alerts) - failed_by_limit + task_failures,
        "side_effects": counts,
        "floor_per_s": round(floor_rate, 1),
        "ratio": round(rate / floor_rate, 3) if floor_rate else None,
        "set_updates_per_s": None if set_rate is None else round(set_rate, 1),
        "setup_seconds": round(setup_s, 1),
    }


def _escrows(prefix: str, count: int, buyer_org, supplier_org) -> list[tuple[str, object]]:
    """Open `count` escrows with a started card payment each (outside the timed part)."""
    from payments import services

    made = []
    for n in range(count):
        reference = f"{prefix}:{n}"
        services.escrow_open(
            escrow_reference=reference,
            currency="USD",
            buyer_organisation=buyer_org,
            supplier_organisation=supplier_org,
            description=f"Bench ledger {reference}",
        )
        payment = services.payment_start(
            escrow_reference=reference,
            purpose="initial",
            amount=Decimal("100.00"),
            currency="USD",
            method="card",
            payer_organisation=buyer_org,
            idempotency_key=f"bench-pay:{uuid.uuid4()}",
            return_url="/",
        )
        made.append((reference, payment))
    return made


@contextmanager
def captures_delivered_inline():
    """The sandbox's capture webhook is delivered at once by the body of its task
    (`payments.tasks.sandbox_deliver_event` calls `deliver_event`: sign the event, hand it to
    the webhook handler), as a worker would run it the moment it is queued, without Celery's
    eager `apply()` machinery around each call (a worker's cost, not the ledger's); every
    other task stays queued on the memory broker."""
    from payments.providers.sandbox import SandboxProvider, deliver_event

    original = SandboxProvider._send

    def send(self, event: dict, *, countdown: int = 0) -> None:
        deliver_event(event)

    SandboxProvider._send = send
    try:
        yield
    finally:
        SandboxProvider._send = original


def ledger(scale: Scale, fixture: dict, cast: dict, *, hot: bool) -> dict:
    """THREADS workers capture and release money on their own escrows (two postings each),
    as LEDGER_PROCESSES forked processes of THREADS // LEDGER_PROCESSES threads each."""
    from payments.models import LedgerTransaction

    run = uuid.uuid4().hex[:8]
    buyers, suppliers = cast["buyers"], cast["suppliers"]
    per_thread: list[tuple] = []
    for i in range(THREADS):
        buyer = buyers[i % len(buyers)]
        supplier = suppliers[0] if hot else suppliers[i % len(suppliers)]
        per_thread.append(
            (
                buyer,
                _escrows(
                    f"bench-ledger:{run}:{i}",
                    scale.ledger_escrows_per_thread,
                    buyer.organisation,
                    supplier.organisation,
                ),
            )
        )
    processes = max(1, min(LEDGER_PROCESSES, THREADS))
    per_process = [per_thread[p::processes] for p in range(processes)]
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(processes + 1)
    deadline = context.Value("d", 0.0)  # time.monotonic(), the same clock in every process
    reports = context.Queue()
    with captures_delivered_inline():
        # One capture and release in this process first (not counted), so every module the
        # movements import lazily is loaded before the fork, as in a worker that has served
        # before: each child would otherwise import (and, with PYTHONDONTWRITEBYTECODE,
        # compile) them itself inside the timed window.
        buyer = buyers[0]
        warm_supplier = suppliers[0].organisation
        for reference, payment in _escrows(
            f"bench-ledger-warmup:{run}", 1, buyer.organisation, warm_supplier
        ):
            _movements(buyer, reference, payment, key=f"bench-warmup:{reference}")
        connections.close_all()  # no connection is shared with a child
        gc.freeze()  # the inherited objects stay out of the children's collections (no COW)
        children = [
            context.Process(
                target=_ledger_process, args=(work, barrier, deadline, reports), daemon=True
            )
            for work in per_process
        ]
        for child in children:
            child.start()
        started = time.monotonic()
        deadline.value = started + scale.ledger_seconds
        barrier.wait(timeout=300)
        errors: list[str] = []
        for _ in children:
            errors += reports.get(timeout=scale.ledger_seconds + 600)
        elapsed = time.monotonic() - started
        for child in children:
            child.join(timeout=60)
    gc.unfreeze()
    moved = LedgerTransaction.objects.filter(
        escrow__reference__startswith=f"bench-ledger:{run}:"
    ).count()
    ran_out = moved >= 2 * THREADS * scale.ledger_escrows_per_thread
    return {
        "name": "ledger, one hot supplier" if hot else "ledger, distinct suppliers",
        "kind": "ledger",
        "workers": f"{processes} processes x {THREADS // processes} threads",
        "movements": moved,
        "seconds": round(elapsed, 2),
        "per_s": round(moved / elapsed, 1) if elapsed else 0,
        "errors": len(errors),
        "error_samples": errors[:3],
        "ran_out_of_escrows": ran_out,
    }


def _movements(buyer, reference: str, payment, *, key: str) -> None:
    """The scenario's two movements on one escrow: the card captured into it, then released."""
    from payments import services

    services.payment_card_submit(payment=payment, card_number="4242424242424242", actor=buyer)
    services.escrow_release(
        escrow_reference=reference, amount=Decimal("100.00"), idempotency_key=key
    )


def _ledger_process(work: list[tuple], barrier, deadline, reports) -> None:
    """One forked ledger process: its threads start together once every process is ready."""
    errors: list[str] = []
    ready = threading.Barrier(len(work) + 1)

    def one_thread(buyer, escrows: list) -> None:
        try:
            ready.wait()
            for n, (reference, payment) in enumerate(escrows):
                if time.monotonic() > deadline.value:
                    break
                _movements(buyer, reference, payment, key=f"bench-release:{reference}:{n}")
        except Exception as error:  # counted, the run goes on
            errors.append(repr(error))
        finally:
            connections.close_all()

    try:
        threads = [threading.Thread(target=one_thread, args=args) for args in work]
        for thread in threads:
            thread.start()
        barrier.wait(timeout=300)
        ready.wait()
        for thread in threads:
            thread.join()
    except BaseException as error:  # reported, never hangs the parent
        errors.append(repr(error))
    finally:
        reports.put(errors)
        reports.close()
        reports.join_thread()  # flushed before the process ends
        os._exit(0)  # no atexit handlers or Django teardown of the parent's state


def pgbench(seconds: float) -> dict:
    """The ledger's floor: `pgbench -N` (simple updates) with THREADS clients, same database."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    url = urlparse(f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}")
    env = {"PGPASSWORD": db.get("PASSWORD") or ""}
    base = ["-h", url.hostname, "-p", str(url.port), "-U", db["USER"], db["NAME"]]
    import os

    env = {**os.environ, **env}
    subprocess.run(["pgbench", "-i", "-q", "-s", "1", *base], env=env, check=True,
                   capture_output=True)  # fmt: skip
    done = subprocess.run(
        ["pgbench", "-N", "-c", str(THREADS), "-j", "2", "-T", str(max(1, int(seconds))), *base],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    tps = 0.0
    for line in done.stdout.splitlines():
        if line.startswith("tps = "):
            tps = float(line.split()[2])
    return {"name": "pgbench -N", "kind": "floor", "per_s": round(tps, 1), "errors": 0}


def outbox(scale: Scale) -> dict:
    """Dispatch `outbox_messages` pending emails to the in-memory backend, as the task does."""
    from django.core import mail
    from django.utils import timezone

    from tradeassure.platform.models import OutboxMessage
    from tradeassure.platform.outbox import outbox_dispatch_due

    now = timezone.now()
    OutboxMessage.objects.filter(status="pending").update(status="sent")
    OutboxMessage.objects.bulk_create(
        (
            OutboxMessage(
                channel="email",
                payload={"to": f"user{n}@example.com", "subject": f"Bench {n}", "body": "Hello"},
                next_attempt_at=now - timedelta(seconds=1),
                give_up_at=now + timedelta(days=1),
                created_at=now,
            )
            for n in range(scale.outbox_messages)
        ),
        batch_size=5000,
    )
    mail.outbox = []
    started = time.perf_counter()
    handled = 0
    while True:
        batch = outbox_dispatch_due(batch_size=1000)
        handled += batch
        if batch == 0:
            break
    elapsed = time.perf_counter() - started
    sent = len(mail.outbox)
    # The floor: the same number of emails sent straight to the same backend.
    mail.outbox = []
    floor_started = time.perf_counter()
    for n in range(scale.outbox_messages):
        mail.send_mail(f"Bench {n}", "Hello", "bench@example.com", [f"user{n}@example.com"])
    floor_elapsed = time.perf_counter() - floor_started
    rate, floor_rate = handled / elapsed, scale.outbox_messages / floor_elapsed
    return {
        "name": "outbox dispatch",
        "kind": "outbox",
        "messages": handled,
        "sent": sent,
        "seconds": round(elapsed, 2),
        "per_s": round(rate, 1),
        "floor_per_s": round(floor_rate, 1),
        "ratio": round(rate / floor_rate, 3),
        "errors": scale.outbox_messages - sent,
    }


def dispute_filing(scale: Scale) -> dict:
    """File disputes on delivered orders through disputes.services (one PDF each)."""
    from orders.models import Order
    from tests.disputes.factories import Parties, open_dispute
    from tests.orders.factories import supplier_user_of

    orders = list(
        Order.objects.filter(status="delivered", disputes__isnull=True)
        .select_related("buyer")
        .order_by("-pk")[: scale.disputes_filed]
    )
    parties = [Parties(order=o, buyer=o.buyer, supplier_user=supplier_user_of(o)) for o in orders]
    errors, latencies, queries = 0, [], []
    started = time.perf_counter()
    for party in parties:
        began = time.perf_counter()
        try:
            with CaptureQueriesContext(connection) as captured:
                open_dispute(party)
            queries.append(len(captured))
        except Exception:
            errors += 1
        latencies.append((time.perf_counter() - began) * 1000)
    elapsed = time.perf_counter() - started
    return {
        "name": "dispute filing",
        "kind": "filing",
        "filed": len(parties) - errors,
        "per_s": round(len(parties) / elapsed, 1) if elapsed else 0,
        "p50_ms": round(statistics.median(latencies), 1) if latencies else 0,
        "queries": max(queries) if queries else None,
        "errors": errors + (0 if parties else 1),
    }


Runner = Callable[[], dict]
