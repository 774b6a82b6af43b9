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
