"""Dispute sweeps on the kernel's sweep_batches: a row that fails is reported and skips no other row."""

from datetime import timedelta

import pytest
import time_machine

from disputes import services
from disputes.models import DisputeStatus
from disputes.services import escalation
from tests.disputes.factories import open_dispute, parties_for
from tradeassure.platform.models import SystemAlert

pytestmark = pytest.mark.django_db


def test_a_failing_row_is_reported_and_the_others_still_escalate(monkeypatch):
    # given two disputes the suppliers never answered, the first of which fails to escalate
    first = open_dispute(parties_for("delivered"))
    second = open_dispute(parties_for("delivered"))
    real, real_batch = escalation.dispute_auto_escalate, escalation._escalate_many

    def flaky(*, dispute):
        if dispute == first.pk:
            raise RuntimeError("boom")
        return real(dispute=dispute)

    def batch_breaks(disputes, now):
        if any(dispute.pk == first.pk for dispute in disputes):
            raise RuntimeError("boom in the batch")
        return real_batch(disputes, now)

    # (the set-based batch fails as a whole with it, then the rows go one by one)
    monkeypatch.setattr(escalation, "_escalate_many", batch_breaks)
    monkeypatch.setattr(escalation, "dispute_auto_escalate", flaky)

    # when the sweep runs after both answer windows
    due = max(first.supplier_response_due_at, second.supplier_response_due_at)
    with time_machine.travel(due + timedelta(minutes=1), tick=False):
        done = services.disputes_sweep_escalations()

    # then the second escalated, the first is left for the next run and staff are told
    assert done == 1
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (
        DisputeStatus.AWAITING_SUPPLIER,
        DisputeStatus.ESCALATED,
    )
    alert = SystemAlert.objects.get(source="disputes.sweep_escalations")
    assert alert.message.startswith(f"Dispute {first.pk}: ") and "boom" in alert.message


def _escalation_facts(dispute):
    from disputes.models import DisputeEvent
    from tradeassure.platform.models import DomainEvent, Notification

    dispute.refresh_from_db()
    event = DisputeEvent.objects.get(dispute=dispute, action="auto_escalate")
    published = DomainEvent.objects.get(
        subject_type="dispute", subject_id=dispute.pk, topic="dispute.auto_escalate"
    )
    notes = sorted(
        (n.title.replace(dispute.reference, "D").replace(dispute.order.reference, "O"), n.body)
        for n in Notification.objects.filter(title__startswith=dispute.reference)
        if "escalated" in n.title
    )
    return (
        dispute.status,
        dispute.escalated_by,
        dispute.pickup_due_at,
        (event.actor_party, event.from_status, event.to_status, event.note, event.data),
        {k: v for k, v in published.payload.items() if k not in ("dispute", "order")},
        notes,
    )


def test_the_batch_escalation_writes_what_the_per_dispute_service_writes():
    # given two disputes the suppliers never answered
    fast = open_dispute(parties_for("delivered"))
    slow = open_dispute(parties_for("delivered"))
    due = max(fast.supplier_response_due_at, slow.supplier_response_due_at)
    # when one is escalated by the per-dispute service and the other by the sweep
    with time_machine.travel(due + timedelta(minutes=1), tick=False):
        assert services.dispute_auto_escalate(dispute=slow) is True
        assert services.disputes_sweep_escalations() == 1
    # then both carry the same facts, timeline row, domain event and notifications
    assert _escalation_facts(fast) == _escalation_facts(slow)
    assert _escalation_facts(fast)[-1]  # somebody was told


def test_a_dispute_the_supplier_answered_meanwhile_is_not_escalated_early():
    # given a dispute whose supplier answered within the response window
    from decimal import Decimal

    from disputes.models import DisputeEvent, Remedy

    dispute = open_dispute(parties_for("delivered"))
    response_due = dispute.supplier_response_due_at
    services.dispute_propose(
        dispute=dispute,
        actor=parties_for_dispute(dispute),
        terms=services.OutcomeTerms(remedy=Remedy.PARTIAL_REFUND, refund_amount=Decimal("100.00")),
        message="We offer 100.",
    )
    dispute.refresh_from_db()
    assert dispute.supplier_answered_at is not None
    # when the sweep runs after the response window but before day 8
    with time_machine.travel(response_due + timedelta(minutes=1), tick=False):
        assert services.disputes_sweep_escalations() == 0
    # then it is not escalated
    dispute.refresh_from_db()
    assert dispute.status != DisputeStatus.ESCALATED
    assert not DisputeEvent.objects.filter(dispute=dispute, action="auto_escalate").exists()
    # and on day 8 it is, once
    with time_machine.travel(dispute.escalation_due_at, tick=False):
        assert services.disputes_sweep_escalations() == 1
        assert services.disputes_sweep_escalations() == 0
    assert DisputeEvent.objects.filter(dispute=dispute, action="auto_escalate").count() == 1


def parties_for_dispute(dispute):
    from tests.orders.factories import supplier_user_of

    return supplier_user_of(dispute.order)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_escalation_sweeps_at_once_escalate_each_dispute_exactly_once(settings):
    import threading

    from django.db import connection

    from disputes.models import DisputeEvent

    # given five unanswered disputes and batches of two, so both sweeps loop
    settings.TRADE_ASSURANCE = {**settings.TRADE_ASSURANCE, "SWEEP_SET_BATCH_SIZE": 2}
    disputes = [open_dispute(parties_for("delivered")) for _ in range(5)]
    due = max(d.supplier_response_due_at for d in disputes)
    barrier = threading.Barrier(2)
    results, errors = [], []

    def run():
        try:
            barrier.wait(timeout=10)
            results.append(services.disputes_sweep_escalations())
        except BaseException as error:  # asserted below: never allowed
            errors.append(error)
        finally:
            connection.close()

    # when two beat processes sweep at the same moment
    with time_machine.travel(due + timedelta(minutes=1), tick=False):
        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    # then each dispute escalated exactly once, with one timeline row, and nothing failed
    assert errors == [] and sum(results) == len(disputes)
    for dispute in disputes:
        dispute.refresh_from_db()
        assert dispute.status == DisputeStatus.ESCALATED
        assert DisputeEvent.objects.filter(dispute=dispute, action="auto_escalate").count() == 1
    assert not SystemAlert.objects.exists()
