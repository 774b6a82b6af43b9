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
