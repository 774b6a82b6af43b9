"""Filing a dispute takes the escrow and order locks once and writes its outbox rows together;
it still refuses a second open dispute and still changes nothing when refused."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from disputes.models import Dispute
from orders.models import OrderStatus
from payments.models import Escrow
from tests.disputes.factories import open_dispute
from tradeassure.core.errors import Conflict
from tradeassure.platform.models import OutboxMessage

pytestmark = pytest.mark.django_db


def _statements(captured, prefix: str) -> list[str]:
    return [q["sql"] for q in captured if q["sql"].startswith(prefix)]


def test_filing_locks_once_writes_its_outbox_in_one_insert_and_kicks_once(delivered):
    from tradeassure.platform.events import _kick_dispatcher

    # given a delivered order with nothing queued
    OutboxMessage.objects.all().delete()
    # when the buyer files a dispute
    with CaptureQueriesContext(connection) as captured:
        dispute = open_dispute(delivered)
    # then the order was locked once and the escrow twice: by the filing, and by the payments
    # layer's freeze (it reads its row under its own lock), no longer again by the orders side
    locks = [sql for sql in captured.captured_queries if " FOR UPDATE" in sql["sql"]]
    assert len([q for q in locks if 'FROM "payments_escrow"' in q["sql"]]) == 2
    assert len([q for q in locks if 'FROM "orders_order"' in q["sql"]]) == 1
    # and the three events' webhooks and the supplier's email went in one INSERT, one kick
    assert len(_statements(captured, 'INSERT INTO "tradeassure_outboxmessage"')) == 1
    channels = sorted(OutboxMessage.objects.values_list("channel", flat=True))
    assert channels == ["email", "webhook", "webhook", "webhook"]
    # (the test runs in one transaction with its setup: one kick waits for its commit)
    kicks = [call for _, call, _ in connection.run_on_commit if call is _kick_dispatcher]
    assert kicks == [_kick_dispatcher]
    # and the filing did what it always did
    delivered.order.refresh_from_db()
    assert delivered.order.status == OrderStatus.DISPUTED
    assert Escrow.objects.get(reference=delivered.order.escrow_reference).frozen
    assert dispute.status == "awaiting_supplier"


def test_a_second_filing_is_still_refused_and_writes_nothing(delivered):
    # given an open dispute
    open_dispute(delivered)
    before = (Dispute.objects.count(), OutboxMessage.objects.count())
    # when the buyer files again
    with pytest.raises(Conflict):
        open_dispute(delivered)
    # then nothing was written
    assert (Dispute.objects.count(), OutboxMessage.objects.count()) == before
