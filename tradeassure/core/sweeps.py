"""One way to sweep due deadlines: pick due ids without holding locks, then let each row's own
service lock and re-check it.

Picking ids holds no lock across the batch, so a sweep never holds row A while waiting for row
B, and a person acting on an order as its deadline passes waits for at most one row's work. Each
row's service takes its locks in the same order as every other service of its lifecycle (for an
order: escrow, then order) and re-checks the deadline under them, so two sweeps at once, or a retried one, do each
transition exactly once. The ids are walked in primary-key order (keyset), so every due row is
visited at most once per run and a row that fails is left for the next run, never retried in a
loop. A Celery soft time limit stops the sweep at once: the row in hand rolls back whole and
stays due for the next run.
"""

import logging
from collections.abc import Callable
from datetime import datetime

from celery.exceptions import SoftTimeLimitExceeded
from django.db import transaction
from django.db.models import QuerySet

from tradeassure.core import clock

logger = logging.getLogger(__name__)

OnFailure = Callable[[int, Exception], None]


def sweep_due(
    *,
    due: Callable[[datetime], QuerySet],
    handle: Callable[[int], bool],
    batch_size: int,
    name: str,
    on_failure: OnFailure | None = None,
) -> int:
    """Run `handle(pk)` for every row of `due(now)`, batch by batch; return how many acted.

    `due` is re-evaluated for each batch with the current time; `handle` returns False when the
    row turned out not to be due under its lock (someone else acted first). A failing row is
    logged, passed to `on_failure` and skipped for this run; the others go on."""
    done = 0
    last_pk = 0
    while True:
        ids = list(
            due(clock.now())
            .filter(pk__gt=last_pk)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return done
        for pk in ids:
            last_pk = pk
            try:
                with transaction.atomic():
                    if handle(pk):
                        done += 1
            except SoftTimeLimitExceeded:
                raise
            except Exception as error:
                logger.exception("%s: row %s failed", name, pk)
                if on_failure is not None:
                    on_failure(pk, error)
