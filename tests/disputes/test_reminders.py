"""Reminders before the dispute deadlines a party must meet: the supplier's answer, settling
before automatic escalation, evidence a mediator asked for, an inspection fee. The party who must
act is told 3 days and 1 day before, once each; nothing once the deadline no longer applies."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine

from disputes import services
from disputes.models import Dispute, DisputeStatus, EvidenceRequest, Inspection, Remedy
from disputes.reminders import REMINDER_SOURCES
from tests.disputes.factories import (
    inspector_for,
    open_dispute,
    pay_inspection_fee,
    pdf,
    under_review,
)
from tradeassure.core import clock
from tradeassure.core.moments import local_text
from tradeassure.platform.models import Notification, OutboxMessage, ReminderSent
from tradeassure.platform.outbox import queued_emails
from tradeassure.platform.reminders import reminders_send_due

pytestmark = pytest.mark.django_db
REMINDER = ": reminder — "


def reminders_to(user) -> list[Notification]:
    return list(Notification.objects.filter(recipient=user, title__contains=REMINDER))


def reminder_emails_to(user) -> int:
    queued = queued_emails(OutboxMessage.objects.filter(channel="email"))
    return sum(1 for e in queued if e["to"] == user.email and REMINDER in e["subject"])


def sweep_at(moment) -> int:
    with time_machine.travel(moment, tick=False):
        return reminders_send_due()


def _supplier_response(parties, mediator):
    dispute = open_dispute(parties)
    return dispute, dispute.supplier_response_due_at, [parties.supplier_user], [parties.buyer]


def _escalation(parties, mediator):
    dispute = open_dispute(parties)
    services.dispute_propose(
        dispute=dispute,
        actor=parties.supplier_user,
        terms=services.OutcomeTerms(remedy=Remedy.PARTIAL_REFUND, refund_amount=Decimal("100")),
        message="We offer a partial refund.",
    )
    dispute.refresh_from_db()
    assert dispute.status == DisputeStatus.NEGOTIATING
    return dispute, dispute.escalation_due_at, [parties.buyer, parties.supplier_user], [mediator]


def _evidence(side):
    def given(parties, mediator):
        dispute = under_review(parties, mediator)
        request = services.dispute_request_evidence(
            dispute=dispute,
            actor=mediator,
            requested_from=side,
            note="Photos of every carton label.",
            due_at=clock.now() + timedelta(days=5),
        )
        acting, other = (
            (parties.buyer, parties.supplier_user)
            if side == "buyer"
            else (parties.supplier_user, parties.buyer)
        )
        return request, request.due_at, [acting], [other, mediator]

    return given


def _inspection_fee(parties, mediator):
    dispute = under_review(parties, mediator)
    inspection = services.dispute_order_inspection(
        dispute=dispute,
        actor=mediator,
        organisation=inspector_for().organisation,
        instructions="Drop test.",
        fee_amount=Decimal("300.00"),
    )
    return inspection, inspection.fee_due_at, [parties.buyer], [parties.supplier_user, mediator]


SOURCES = {
    "supplier_response": _supplier_response,
    "escalation": _escalation,
    "evidence_from_buyer": _evidence("buyer"),
    "evidence_from_supplier": _evidence("supplier"),
    "inspection_fee": _inspection_fee,
}


def test_the_disputes_app_declares_its_four_deadlines():
    assert {(s.kind, s.deadline, s.due_field) for s in REMINDER_SOURCES} == {
        ("dispute", "supplier_response", "supplier_response_due_at"),
        ("dispute", "escalation", "escalation_due_at"),
        ("evidence_request", "evidence", "due_at"),
        ("inspection", "fee", "fee_due_at"),
    }


@pytest.mark.parametrize("name", SOURCES)
def test_the_party_who_must_act_is_reminded_3_days_and_1_day_before_once_each(
    name, delivered, mediator
):
    # given a dispute deadline a party must meet
    subject, due, acting, others = SOURCES[name](delivered, mediator)

    # when the sweep runs inside the 3-day band, twice
    assert sweep_at(max(clock.now(), due - timedelta(days=3)) + timedelta(minutes=1)) == 1
    assert sweep_at(max(clock.now(), due - timedelta(days=3)) + timedelta(minutes=2)) == 0
    # and inside the last day, twice
    assert sweep_at(due - timedelta(days=1) + timedelta(minutes=1)) == 1
    assert sweep_at(due - timedelta(minutes=1)) == 0

    # then each person who must act has two reminders (bell and email) with the exact time,
    # linking to the dispute; nobody else has any
    for user in acting:
        notices = reminders_to(user)
        assert len(notices) == 2, user
        assert reminder_emails_to(user) == 2
        assert all(local_text(due, user.time_zone) in n.body for n in notices)
        assert all(n.url.startswith("/disputes/") for n in notices)
    for user in others:
        assert reminders_to(user) == []
    assert sorted(ReminderSent.objects.values_list("subject_id", "due_at", "lead_days")) == [
        (subject.pk, due, 1),
        (subject.pk, due, 3),
    ]


def test_no_reminder_once_the_deadline_no_longer_applies(delivered, late, mediator):
    # given a dispute the buyer withdrew before the supplier's answer was due
    withdrawn = open_dispute(delivered)
    services.dispute_withdraw(dispute=withdrawn, actor=delivered.buyer)
    withdrawn.refresh_from_db()
    assert withdrawn.status == DisputeStatus.CANCELLED
    # and an inspection whose fee the buyer paid, and an evidence request answered
    dispute = under_review(late, mediator, remedy=Remedy.FULL_REFUND)
    inspection = services.dispute_order_inspection(
        dispute=dispute,
        actor=mediator,
        organisation=inspector_for().organisation,
        instructions="Count the cartons.",
        fee_amount=Decimal("200.00"),
    )
    pay_inspection_fee(inspection, late.buyer)
    inspection.refresh_from_db()
    assert inspection.state == Inspection.State.ASSIGNED
    request = services.dispute_request_evidence(
        dispute=Dispute.objects.get(pk=dispute.pk),
        actor=mediator,
        requested_from="supplier",
        note="The production records.",
        due_at=clock.now() + timedelta(days=2),
    )
    services.dispute_evidence_add(
        dispute=Dispute.objects.get(pk=dispute.pk), actor=late.supplier_user, files=[pdf()]
    )
    request.refresh_from_db()
    assert request.state == EvidenceRequest.State.FULFILLED

    # when the sweep runs inside every one of those windows
    sent = sweep_at(clock.now() + timedelta(minutes=1))

    # then nobody is reminded
    assert sent == 0
    assert not ReminderSent.objects.exists()
    for user in (delivered.buyer, delivered.supplier_user, late.buyer, late.supplier_user):
        assert reminders_to(user) == []
