"""Two ways to sweep due deadlines, both safe when two sweeps run at once and after a crash.

`sweep_batches` (the set-based one every sweep with volume uses): one transaction per batch
claims the due rows with the due condition itself under lock (`SELECT … FOR UPDATE SKIP LOCKED`
or a compare-and-swap `UPDATE … WHERE status = … AND due <= now`), so a second sweep or a person
holding a row makes the claim skip it, never wait for it; the app then moves the whole batch with
bulk writes. Rows are walked in primary-key order (keyset), so each is visited at most once per
run. A batch that fails rolls back whole and its rows go one by one through the app's per-row
service; a soft time limit rolls the batch in hand back and ends the run normally, leaving every
row not committed for the next run (nothing is recorded as failed because a limit struck).

`sweep_due` (per row, for low-volume sweeps whose rows take several locks of their own): pick
due ids without holding locks, then let each row's own service lock and re-check it in its own
transaction. A Celery soft time limit stops it at once: the row in hand rolls back whole and
stays due for the next run; `run_to_time_limit` turns that into a normal end of the task.

Lock order: a claim locks only the sweep's own rows (skipping held ones); an app whose rows move
money locks their escrows first, as its other services do (see orders.services.sweeps).
"""

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

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


# ---------------------------------------------------------------------------------------------
# Set-based sweeps: claim a batch of due rows under lock, move them all in one transaction.
# ---------------------------------------------------------------------------------------------

# A sweep task's Celery limits. Beat runs each sweep every 60 s: a run that has a backlog loops
# over batches until the soft limit, rolls back the batch in hand and returns; the next run goes
# on from there. The hard limit (which kills the worker process) is far above the soft one, so
# it never strikes a sweep that honours the soft one.
SWEEP_SOFT_TIME_LIMIT_S = 50
SWEEP_TIME_LIMIT_S = 170
SWEEP_TASK_OPTIONS: dict[str, object] = {
    "acks_late": True,
    # A worker killed mid-run (hard limit, OOM, deploy) hands the message back to the broker:
    # the sweep is idempotent, so running it again is what the next beat tick would do anyway.
    "reject_on_worker_lost": True,
    "soft_time_limit": SWEEP_SOFT_TIME_LIMIT_S,
    "time_limit": SWEEP_TIME_LIMIT_S,
}

Row = TypeVar("Row")


@dataclass(frozen=True)
class BatchSweep(Generic[Row]):
    """One set-based sweep, as its app declares it.

    `claim(now, after_pk, limit)` runs inside the batch's transaction and returns up to `limit`
    due rows with a primary key above `after_pk`, in key order, locked for this transaction and
    re-checked by the query itself (`SELECT … FOR UPDATE SKIP LOCKED` on the due condition, or a
    compare-and-swap `UPDATE … WHERE status = … AND due <= now RETURNING`); a row somebody else
    holds is skipped, not waited for. `apply(rows, now)` moves the claimed rows in the same
    transaction (bulk updates, events, notifications) and returns how many it moved; a row it
    refuses stays as it was. `key(row)` is the row's primary key (the keyset cursor).

    `one_by_one(pk)` is the per-row path (the app's service, in its own transaction) used for
    the rows of a batch that failed as a whole, so one bad row is reported and blocks no other."""

    name: str
    claim: Callable[[datetime, int, int], Sequence[Row]]
    apply: Callable[[Sequence[Row], datetime], int]
    key: Callable[[Row], int]
    one_by_one: Callable[[int], bool] | None = None
    on_failure: OnFailure | None = None
    # Adapt the batch to take about this long (None: always `batch_size`): a sweep whose rows
    # are slow (each moves money through the ledger) starts small and grows while batches are
    # quick, so a soft time limit never rolls back more than a few seconds of work and every
    # run makes progress whatever a row costs.
    target_seconds: float | None = None


def _next_size(size: int, elapsed: float, *, target: float, most: int) -> int:
    if elapsed < target / 2:
        return min(most, size * 2)
    if elapsed > target * 2:
        return max(1, size // 2)
    return size


def sweep_batches(sweep: BatchSweep[Row], *, batch_size: int) -> int:
    """Run `sweep` over every due row, batch by batch, each batch in one transaction; return how
    many rows moved. The rows are walked in key order (keyset), so each is visited at most once
    per run and a refused or failing row is never retried in a loop.

    A soft time limit (`SoftTimeLimitExceeded`) rolls the batch in hand back whole and ends the
    run normally: nothing is recorded as failed and every row not yet committed stays due for
    the next run. A batch that fails otherwise rolls back and its rows go one by one through
    `one_by_one`; a row that fails there is logged, passed to `on_failure` and left due."""
    done = 0
    last_pk = 0
    size = batch_size if sweep.target_seconds is None else max(1, batch_size // 10)
    try:
        while True:
            claimed: list[int] = []
            started = time.monotonic()
            try:
                with transaction.atomic():
                    now = clock.now()
                    rows = sweep.claim(now, last_pk, size)
                    claimed = [sweep.key(row) for row in rows]
                    if not claimed:
                        return done
                    moved = sweep.apply(rows, now)
            except SoftTimeLimitExceeded:
                raise
            except Exception:
                if not claimed or sweep.one_by_one is None:
                    raise
                logger.exception("%s: batch after %s failed; rows one by one", sweep.name, last_pk)
                moved = _one_by_one(sweep, claimed)
            last_pk = claimed[-1]
            done += moved
            if sweep.target_seconds is not None:
                elapsed = time.monotonic() - started
                size = _next_size(size, elapsed, target=sweep.target_seconds, most=batch_size)
    except SoftTimeLimitExceeded:
        logger.info("%s: soft time limit after %s rows; the next run goes on", sweep.name, done)
        return done


def _one_by_one(sweep: BatchSweep[Row], pks: Sequence[int]) -> int:
    assert sweep.one_by_one is not None
    done = 0
    for pk in pks:
        try:
            with transaction.atomic():
                if sweep.one_by_one(pk):
                    done += 1
        except SoftTimeLimitExceeded:
            raise
        except Exception as error:
            logger.exception("%s: row %s failed", sweep.name, pk)
            if sweep.on_failure is not None:
                sweep.on_failure(pk, error)
    return done


def run_to_time_limit(sweep: Callable[[], int]) -> int:
    """Call a sweep from its Celery task: a soft time limit that strikes outside the sweep's own
    batches (before the first, or in its bookkeeping) ends the task normally too, with the
    rows left for the next beat run; it is never a failure."""
    try:
        return sweep()
    except SoftTimeLimitExceeded:
        logger.info("%s: soft time limit; the next run goes on", getattr(sweep, "__name__", sweep))
        return 0
