"""The kernel's sweep helper: each due row once, failures left for the next run, time limits clean."""

import threading

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection, transaction

from tradeassure.core import clock
from tradeassure.core.sweeps import sweep_due
from tradeassure.platform.models import SystemAlert


def _rows(count: int) -> list[int]:
    now = clock.now()
    return [
        SystemAlert.objects.create(source="due", message=str(n), created_at=now).pk
        for n in range(count)
    ]


def _due(now):
    return SystemAlert.objects.filter(source="due", created_at__lte=now)


def _mark_done(pk: int) -> bool:
    """A service: lock the row, re-check it is due, act; False when someone else acted first."""
    row = SystemAlert.objects.select_for_update().get(pk=pk)
    if row.source != "due":
        return False
    row.source = "done"
    row.save(update_fields=["source"])
    return True


@pytest.mark.django_db
def test_every_due_row_is_handled_once_across_batches():
    # given five due rows and batches of two
    ids = _rows(5)
    # when the sweep runs twice
    first = sweep_due(due=_due, handle=_mark_done, batch_size=2, name="test")
    second = sweep_due(due=_due, handle=_mark_done, batch_size=2, name="test")
    # then each row acted once, in the first run
    assert (first, second) == (5, 0)
    assert set(SystemAlert.objects.filter(source="done").values_list("pk", flat=True)) == set(ids)


@pytest.mark.django_db
def test_a_failing_row_is_reported_left_for_the_next_run_and_stops_no_other():
    ids = _rows(3)
    failures: list[tuple[int, str]] = []

    def flaky(pk: int) -> bool:
        _mark_done(pk)
        if pk == ids[1]:
            raise RuntimeError("lost the connection")
        return True

    done = sweep_due(
        due=_due,
        handle=flaky,
        batch_size=10,
        name="test",
        on_failure=lambda pk, error: failures.append((pk, str(error))),
    )
    assert done == 2
    assert failures == [(ids[1], "lost the connection")]
    # the failed row's own work rolled back: it is still due for the next run
    assert list(_due(clock.now()).values_list("pk", flat=True)) == [ids[1]]
    assert sweep_due(due=_due, handle=_mark_done, batch_size=10, name="test") == 1


@pytest.mark.django_db
def test_a_soft_time_limit_stops_the_sweep_and_leaves_the_row_in_hand_due():
    ids = _rows(3)
    failures: list[int] = []

    def limited(pk: int) -> bool:
        _mark_done(pk)
        if pk == ids[1]:
            raise SoftTimeLimitExceeded()
        return True

    with pytest.raises(SoftTimeLimitExceeded):
        sweep_due(
            due=_due,
            handle=limited,
            batch_size=10,
            name="test",
            on_failure=lambda pk, error: failures.append(pk),
        )
    # nothing recorded as failed; the row in hand and the rest are left for the next run
    assert failures == []
    assert list(_due(clock.now()).order_by("pk").values_list("pk", flat=True)) == ids[1:]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_act_on_each_row_exactly_once_without_errors():
    ids = _rows(40)
    results: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run() -> None:
        try:
            start.wait()
            results.append(
                sweep_due(
                    due=_due,
                    handle=_mark_done,
                    batch_size=7,
                    name="test",
                    on_failure=lambda pk, error: errors.append(error),
                )
            )
        except BaseException as error:  # the test asserts below that nothing failed
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(results) == len(ids)
    assert SystemAlert.objects.filter(source="done").count() == len(ids)
    assert not transaction.get_connection().in_atomic_block


# --- the set-based sweep_batches ---------------------------------------------------------------


def _claim(now, after, limit):
    return list(
        SystemAlert.objects.select_for_update(skip_locked=True)
        .filter(source="due", created_at__lte=now, pk__gt=after)
        .order_by("pk")[:limit]
    )


def _apply(rows, now):
    return SystemAlert.objects.filter(pk__in=[r.pk for r in rows], source="due").update(
        source="done"
    )


def _batch_sweep(**overrides):
    from tradeassure.core.sweeps import BatchSweep

    options = {"name": "test", "claim": _claim, "apply": _apply, "key": lambda row: row.pk}
    return BatchSweep(**{**options, **overrides})


@pytest.mark.django_db
def test_sweep_batches_moves_every_due_row_once_across_batches():
    from tradeassure.core.sweeps import sweep_batches

    ids = _rows(5)
    assert sweep_batches(_batch_sweep(), batch_size=2) == 5
    assert sweep_batches(_batch_sweep(), batch_size=2) == 0
    assert set(SystemAlert.objects.filter(source="done").values_list("pk", flat=True)) == set(ids)


@pytest.mark.django_db
def test_sweep_batches_at_a_soft_limit_rolls_the_batch_back_and_ends_normally():
    from tradeassure.core.sweeps import sweep_batches

    ids = _rows(5)
    failures: list[int] = []
    calls = {"n": 0}

    def limited(rows, now):
        calls["n"] += 1
        moved = _apply(rows, now)
        if calls["n"] == 2:
            raise SoftTimeLimitExceeded()
        return moved

    # when the limit strikes in the second batch of two
    done = sweep_batches(
        _batch_sweep(apply=limited, on_failure=lambda pk, error: failures.append(pk)),
        batch_size=2,
    )
    # then the first batch stays done, the second rolled back, nothing is recorded as failed
    assert done == 2 and failures == []
    assert list(_due(clock.now()).order_by("pk").values_list("pk", flat=True)) == ids[2:]
    # and the next run does the rest
    assert sweep_batches(_batch_sweep(), batch_size=2) == 3


@pytest.mark.django_db
def test_a_failing_batch_goes_one_by_one_and_reports_only_the_failing_row():
    from tradeassure.core.sweeps import sweep_batches

    ids = _rows(3)
    failures: list[tuple[int, str]] = []

    def broken(rows, now):
        raise RuntimeError("batch broke")

    def one(pk):
        if pk == ids[1]:
            raise RuntimeError("row broke")
        return _mark_done(pk)

    done = sweep_batches(
        _batch_sweep(
            apply=broken,
            one_by_one=one,
            on_failure=lambda pk, error: failures.append((pk, str(error))),
        ),
        batch_size=10,
    )
    assert done == 2
    assert failures == [(ids[1], "row broke")]
    assert list(_due(clock.now()).values_list("pk", flat=True)) == [ids[1]]


def test_an_adaptive_batch_grows_while_quick_and_shrinks_when_slow():
    from tradeassure.core.sweeps import _next_size

    assert _next_size(10, 0.1, target=1.0, most=100) == 20
    assert _next_size(80, 0.1, target=1.0, most=100) == 100
    assert _next_size(10, 1.0, target=1.0, most=100) == 10
    assert _next_size(10, 5.0, target=1.0, most=100) == 5
    assert _next_size(1, 5.0, target=1.0, most=100) == 1
