"""Dispute services end to end: filing, negotiation, escalation, mediation, inspection, outcomes."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import IntegrityError, transaction

from disputes import services
from disputes.models import (
    Dispute,
    DisputeEvent,
    DisputeStatus,
    DisputeType,
    Evidence,
    EvidenceRequest,
    Inspection,
    Proposal,
    Remedy,
)
from orders.models import ContractVersion, Order, OrderStatus
from payments.selectors import escrow_summary
from tests.disputes.factories import (
    escalated,
    inspector_for,
    open_dispute,
    parties_for,
    pay_inspection_fee,
    pdf,
    under_review,
)
from tests.factories import BuyerFactory, VettingFactory
from tradeassure.core import clock
from tradeassure.core.errors import Conflict, InvalidTransition, NotAllowed, ValidationFailed

S = DisputeStatus
pytestmark = pytest.mark.django_db


def money(order: Order):
    return escrow_summary(escrow_reference=order.escrow_reference)


def refetch(obj):
    return type(obj).objects.get(pk=obj.pk)


# --- filing -----------------------------------------------------------------------------------


def test_filing_freezes_the_order_and_escrow_and_starts_the_supplier_clock(delivered):
    # given a received post-delivery order with its claim window running
    order = delivered.order
    assert order.completion_due_at is not None

    # when the buyer files a quality claim with a PDF
    dispute = open_dispute(delivered, amount=Decimal("300.00"))

    # then the order is disputed, its timers paused, the escrow frozen, the supplier has 3 days
    order = refetch(order)
    assert order.status == OrderStatus.DISPUTED
    assert order.completion_due_at is None and "completion_due_at" in order.paused_timers
    assert money(order).frozen is True
    assert dispute.status == S.AWAITING_SUPPLIER
    assert dispute.supplier_response_due_at - dispute.opened_at == timedelta(days=3)
    assert dispute.escalation_due_at - dispute.opened_at == timedelta(days=7)
    proposal = dispute.proposals.get()
    assert (proposal.party, proposal.remedy, proposal.refund_amount) == (
        "buyer",
        Remedy.PARTIAL_REFUND,
        Decimal("300.00"),
    )
    assert dispute.evidence.get().content_type == "application/pdf"
    assert list(dispute.events.values_list("action", flat=True)) == ["open"]
    assert delivered.supplier_user.notifications.filter(title__contains="answer by").exists()


def test_claim_types_follow_coverage_and_the_claim_window(db):
    # given orders in different situations
    received = parties_for("delivered").order
    shipped = parties_for("shipped").order
    late = parties_for("late").order
    pre_shipment_shipped = parties_for("shipped", coverage="pre_shipment").order

    def types(order):
        return {value for value, _label in services.dispute_allowed_types(order=order)}

    # then each allows exactly the claims its coverage and window cover
    assert types(received) == {DisputeType.QUALITY, DisputeType.QUANTITY_SHORT, DisputeType.DAMAGED}
    assert types(shipped) == {
        DisputeType.NOT_RECEIVED,
        DisputeType.QUALITY,
        DisputeType.QUANTITY_SHORT,
        DisputeType.DAMAGED,
    }
    assert types(late) == {DisputeType.LATE_SHIPMENT}
    assert types(pre_shipment_shipped) == set()
    # and when the 30-day window after receipt has closed, nothing is left
    with time_machine.travel(received.completion_due_at + timedelta(minutes=1), tick=False):
        assert types(received) == set()


def test_a_refused_filing_changes_nothing(delivered):
    # given an order holding USD 1,400.00
    order = delivered.order

    # when the buyer asks for more than is held, and a late-shipment claim on received goods
    with pytest.raises(ValidationFailed) as refused:
        open_dispute(delivered, type=DisputeType.LATE_SHIPMENT, amount=Decimal("5000.00"))

    # then both problems are reported and nothing was written
    assert "type" in refused.value.fields and "refund_amount" in refused.value.fields
    assert Dispute.objects.count() == 0 and Evidence.objects.count() == 0
    order = refetch(order)
    assert order.status == OrderStatus.DELIVERED and money(order).frozen is False


def test_one_open_dispute_per_order_in_the_service_and_the_database(delivered):
    # given an open dispute
    dispute = open_dispute(delivered)

    # when the buyer files another one, then it is refused
    with pytest.raises(Conflict):
        open_dispute(delivered)
    # and the database refuses a second open row even without the service
    with pytest.raises(IntegrityError), transaction.atomic():
        Dispute.objects.create(
            order=delivered.order,
            type=DisputeType.DAMAGED,
            description="x",
            requested_remedy=Remedy.FULL_REFUND,
            currency="USD",
            opened_by=delivered.buyer,
            opened_at=clock.now(),
            order_status_at_opening="delivered",
        )
    assert Dispute.objects.filter(order=delivered.order).count() == 1
    assert refetch(dispute).status == S.AWAITING_SUPPLIER


def test_only_the_buyer_files_and_outsiders_cannot_act(delivered):
    # given a supplier user and a stranger
    with pytest.raises(NotAllowed):
        services.dispute_open(
            order=delivered.order,
            actor=delivered.supplier_user,
            type=DisputeType.QUALITY,
            description="x",
            terms=services.OutcomeTerms(remedy=Remedy.FULL_REFUND),
        )
    dispute = open_dispute(delivered)
    stranger = BuyerFactory()

    # when a stranger tries to message or escalate, then it is refused and nothing changes
    with pytest.raises(NotAllowed):
        services.dispute_message_send(dispute=dispute, actor=stranger, body="hello")
    assert refetch(dispute).status == S.AWAITING_SUPPLIER
    assert dispute.messages.count() == 0 and dispute.events.count() == 1


# --- settlement by agreement --------------------------------------------------------------------


def test_settle_by_agreement_moves_money_once(delivered):
    # given the buyer's claim for a USD 300.00 partial refund
    dispute = open_dispute(delivered, amount=Decimal("300.00"))
    proposal = dispute.proposals.get()

    # when the supplier accepts it
    services.dispute_accept(dispute=dispute, actor=delivered.supplier_user, proposal_id=proposal.pk)

    # then the dispute is resolved, 300 refunded, the rest released (fee on the released part only)
    dispute, order = refetch(dispute), refetch(delivered.order)
    assert (dispute.status, dispute.outcome, dispute.resolved_via) == (
        S.RESOLVED,
        Remedy.PARTIAL_REFUND,
        "agreement",
    )
    assert order.status == OrderStatus.COMPLETED
    summary = money(order)
    assert (summary.held, summary.refunded, summary.released) == (
        Decimal("0.00"),
        Decimal("300.00"),
        Decimal("1100.00"),
    )
    assert summary.fees == Decimal("34.00")  # 3% of 1,100.00 + 1.00
    assert refetch(proposal).state == Proposal.State.ACCEPTED
    # and a second accept, or executing again, moves nothing
    with pytest.raises(InvalidTransition):
        services.dispute_accept(
            dispute=dispute, actor=delivered.supplier_user, proposal_id=proposal.pk
        )
    with pytest.raises(InvalidTransition):
        services.dispute_outcome_execute(
            dispute=dispute,
            actor=delivered.supplier_user,
            terms=services.OutcomeTerms(remedy=Remedy.FULL_REFUND),
            via="agreement",
            reason="again",
            action="accept",
        )
    assert money(order) == summary
    assert dispute.events.filter(action="accept").count() == 1


def test_counter_proposal_answers_the_claim_and_the_buyer_accepts_it(delivered):
    # given a full-refund claim
    dispute = open_dispute(delivered, remedy=Remedy.FULL_REFUND)

    # when the supplier counter-proposes USD 200.00 and the buyer accepts
    counter = services.dispute_propose(
        dispute=dispute,
        actor=delivered.supplier_user,
        terms=services.OutcomeTerms(remedy=Remedy.PARTIAL_REFUND, refund_amount=Decimal("200.00")),
        message="12 units cracked: we refund them.",
    )
    dispute = refetch(dispute)
    assert dispute.status == S.NEGOTIATING and dispute.supplier_response_due_at is None
    # the buyer cannot accept their own (superseded) request any more
    first = dispute.proposals.order_by("id").first()
    assert first.state == Proposal.State.SUPERSEDED
    services.dispute_accept(dispute=dispute, actor=delivered.buyer, proposal_id=counter.pk)

    # then 200 is refunded and the order completes
    assert refetch(dispute).outcome_refund == Decimal("200.00")
    assert money(delivered.order).refunded == Decimal("200.00")


def test_supplier_rejects_with_evidence_and_the_dispute_negotiates(delivered):
    dispute = open_dispute(delivered)

    # when the supplier rejects the claim with its QC report
    services.dispute_reject(
        dispute=dispute,
        actor=delivered.supplier_user,
        message="Our outgoing QC passed.",
        evidence_files=[pdf("qc.pdf")],
    )

    # then the supplier answered in time, the buyer is told, the file is attached
    dispute = refetch(dispute)
    assert dispute.status == S.NEGOTIATING and dispute.supplier_answered_at is not None
    assert dispute.evidence.filter(party="supplier").count() == 1
    assert dispute.proposals.get().state == Proposal.State.REJECTED
    assert delivered.buyer.notifications.filter(title__contains="rejected").exists()


# --- escalation -------------------------------------------------------------------------------


def test_buyer_escalates_from_day_4_and_not_before(delivered):
    dispute = open_dispute(delivered)

    # when the buyer tries on day 3, then it is refused and nothing changes
    day_3 = dispute.opened_at + timedelta(days=2, hours=23)
    with (
        time_machine.travel(day_3, tick=False),
        pytest.raises(InvalidTransition, match="escalate from"),
    ):
        services.dispute_escalate(dispute=dispute, actor=delivered.buyer)
    assert refetch(dispute).status == S.AWAITING_SUPPLIER

    # when the buyer tries on day 4, then the dispute escalates with a 2-working-day pick-up SLA
    moment = dispute.opened_at + timedelta(days=3, minutes=1)
    with time_machine.travel(moment, tick=False):
        services.dispute_escalate(dispute=dispute, actor=delivered.buyer, note="No answer.")
    dispute = refetch(dispute)
    assert (dispute.status, dispute.escalated_by) == (S.ESCALATED, "buyer")
    assert dispute.pickup_due_at == clock.add_working_days(dispute.escalated_at, 2)
    assert dispute.escalation_due_at is None


def test_sweep_escalates_when_the_supplier_never_answered(delivered):
    dispute = open_dispute(delivered)

    # when the sweep runs just before, then after the 3-day answer window
    with time_machine.travel(dispute.supplier_response_due_at - timedelta(minutes=1), tick=False):
        assert services.disputes_sweep_escalations() == 0
    with time_machine.travel(dispute.supplier_response_due_at + timedelta(minutes=1), tick=False):
        assert services.disputes_sweep_escalations() == 1
        assert services.disputes_sweep_escalations() == 0  # idempotent

    # then it escalated once, by the system
    dispute = refetch(dispute)
    assert (dispute.status, dispute.escalated_by) == (S.ESCALATED, "system")
    assert dispute.events.filter(action="auto_escalate").count() == 1


def test_sweep_escalates_on_day_8_when_still_unresolved(delivered):
    # given a dispute the supplier answered (negotiating)
    dispute = open_dispute(delivered)
    services.dispute_reject(dispute=dispute, actor=delivered.supplier_user, message="No.")

    # when the sweep runs on day 7 and on day 8
    with time_machine.travel(dispute.opened_at + timedelta(days=6, hours=23), tick=False):
        assert services.disputes_sweep_escalations() == 0
    assert refetch(dispute).status == S.NEGOTIATING
    with time_machine.travel(dispute.opened_at + timedelta(days=7, minutes=1), tick=False):
        assert services.disputes_sweep_escalations() == 1

    # then it escalated automatically
    assert refetch(dispute).status == S.ESCALATED


def test_withdraw_before_escalation_resumes_the_order(delivered):
    dispute = open_dispute(delivered)
    paused = refetch(delivered.order).paused_timers["completion_due_at"]

    # when the buyer withdraws
    services.dispute_withdraw(dispute=dispute, actor=delivered.buyer, reason="Sorted it out.")

    # then the dispute is cancelled, the order is back with its claim window (time left kept)
    dispute, order = refetch(dispute), refetch(delivered.order)
    assert dispute.status == S.CANCELLED
    assert order.status == OrderStatus.DELIVERED and not money(order).frozen
    assert abs((order.completion_due_at - clock.now()).total_seconds() - paused) < 60
    assert money(order).held == Decimal("1400.00")


def test_no_withdrawal_after_escalation(delivered):
    dispute = escalated(delivered)
    with pytest.raises(InvalidTransition):
        services.dispute_withdraw(dispute=dispute, actor=delivered.buyer)
    assert refetch(dispute).status == S.ESCALATED


# --- mediation --------------------------------------------------------------------------------


def test_mediator_full_refund(delivered, mediator):
    dispute = under_review(delivered, mediator)

    services.dispute_decide(
        dispute=dispute,
        actor=mediator,
        terms=services.OutcomeTerms(remedy=Remedy.FULL_REFUND),
        reason="Photos show every unit cracked.",
    )

    dispute, order = refetch(dispute), refetch(delivered.order)
    assert (dispute.status, dispute.outcome, dispute.supplier_at_fault) == (
        S.RESOLVED,
        Remedy.FULL_REFUND,
        True,
    )
    assert order.status == OrderStatus.REFUNDED and order.dispute_lost is True
    assert (money(order).refunded, money(order).released) == (Decimal("1400.00"), Decimal("0.00"))


def test_mediator_partial_refund(delivered, mediator):
    dispute = under_review(delivered, mediator)

    services.dispute_decide(
        dispute=dispute,
        actor=mediator,
        terms=services.OutcomeTerms(remedy=Remedy.PARTIAL_REFUND, refund_amount=Decimal("250.50")),
        reason="12% defective.",
    )

    summary = money(delivered.order)
    assert (summary.refunded, summary.released, summary.held) == (
        Decimal("250.50"),
        Decimal("1149.50"),
        Decimal("0.00"),
    )
    assert refetch(delivered.order).status == OrderStatus.COMPLETED


def test_mediator_no_refund_releases_shipped_goods(delivered, mediator):
    dispute = under_review(delivered, mediator)

    services.dispute_decide(
        dispute=dispute,
        actor=mediator,
        terms=services.OutcomeTerms(remedy=Remedy.NO_REFUND),
        reason="The goods meet the contract.",
    )

    dispute, order = refetch(dispute), refetch(delivered.order)
    assert dispute.supplier_at_fault is False and order.dispute_lost is False
    assert order.status == OrderStatus.COMPLETED
    assert money(order).released == Decimal("1400.00")


def test_mediator_no_refund_on_unshipped_goods_lets_the_order_continue(late, mediator):
    dispute = under_review(late, mediator, remedy=Remedy.FULL_REFUND)

    services.dispute_decide(
        dispute=dispute,
        actor=mediator,
        terms=services.OutcomeTerms(remedy=Remedy.NO_REFUND),
        reason="The delay was agreed by email.",
    )

    order = refetch(late.order)
    assert order.status == OrderStatus.IN_PRODUCTION
    assert money(order).held == Decimal("400.00") and money(order).released == Decimal("0.00")


def test_partial_refund_is_refused_before_shipment(late, mediator):
    dispute = under_review(late, mediator, remedy=Remedy.FULL_REFUND)
    with pytest.raises(ValidationFailed):
        services.dispute_decide(
            dispute=dispute,
            actor=mediator,
            terms=services.OutcomeTerms(remedy=Remedy.PARTIAL_REFUND, refund_amount=Decimal("10")),
            reason="x",
        )
    assert refetch(dispute).status == S.UNDER_REVIEW and money(late.order).frozen is True


def test_new_agreement_new_deadline_and_price_reduction(late, mediator):
    # given a late order (USD 400 of 1,400 paid) in review
    dispute = under_review(late, mediator, remedy=Remedy.FULL_REFUND)
    deadline = clock.now() + timedelta(days=20)

    # when the mediator decides a new deadline and a USD 125.00 price reduction
    services.dispute_decide(
        dispute=dispute,
        actor=mediator,
        terms=services.OutcomeTerms(
            remedy=Remedy.NEW_AGREEMENT,
            new_shipment_deadline=deadline,
            price_reduction=Decimal("125.00"),
        ),
        reason="Production restarted; a discount for the delay.",
    )

    # then a new accepted contract version with the lower price is in force, the order continues
    # with the new deadline running, and nothing is refunded (the balance is simply smaller)
    order = refetch(late.order)
    version = order.current_version
    assert version.number == 2 and version.state == ContractVersion.State.ACCEPTED
    assert order.total == Decimal("1275.00") and order.balance_amount == Decimal("875.00")
    assert order.status == OrderStatus.IN_PRODUCTION and order.is_late is False
    assert abs((order.shipment_due_at - deadline).total_seconds()) < 5
    assert money(order).refunded == Decimal("0.00") and money(order).frozen is False
    assert refetch(dispute).outcome == Remedy.NEW_AGREEMENT


def test_new_agreement_price_reduction_refunds_what_was_overpaid(delivered):
    # given a fully paid order (USD 1,400) and the supplier's offer of a USD 250 reduction
    dispute = open_dispute(delivered)
    offer = services.dispute_propose(
        dispute=dispute,
        actor=delivered.supplier_user,
        terms=services.OutcomeTerms(
            remedy=Remedy.NEW_AGREEMENT, price_reduction=Decimal("250.00"), replacement=False
        ),
    )

    # when the buyer accepts it
    services.dispute_accept(dispute=dispute, actor=delivered.buyer, proposal_id=offer.pk)

    # then the contract total drops by 250 and 250 is refunded; the claim window resumes
    order = refetch(delivered.order)
    assert order.total == Decimal("1150.00")
    assert money(order).refunded == Decimal("250.00") and money(order).held == Decimal("1150.00")
    assert order.status == OrderStatus.DELIVERED and order.completion_due_at is not None


def test_only_the_assigned_mediator_decides_and_vetting_staff_never(delivered, mediator):
    from tests.factories import MediatorFactory

    dispute = under_review(delivered, mediator)
    for actor in (MediatorFactory(), VettingFactory()):
        with pytest.raises(NotAllowed):
            services.dispute_decide(
                dispute=dispute,
                actor=actor,
                terms=services.OutcomeTerms(remedy=Remedy.FULL_REFUND),
                reason="x",
            )
    assert refetch(dispute).status == S.UNDER_REVIEW
    assert money(delivered.order).held == Decimal("1400.00")


# --- evidence requests ------------------------------------------------------------------------


def test_evidence_missed_by_the_buyer_cancels_the_dispute(delivered, mediator):
    dispute = under_review(delivered, mediator)
    request = services.dispute_request_evidence(
        dispute=dispute,
        actor=mediator,
        requested_from="buyer",
        note="Photos of every carton label.",
        due_at=clock.now() + timedelta(days=2),
    )
    assert delivered.buyer.notifications.filter(title__contains="evidence").exists()

    with time_machine.travel(request.due_at + timedelta(minutes=1), tick=False):
        assert services.disputes_sweep_evidence_requests() == 1
        assert services.disputes_sweep_evidence_requests() == 0

    dispute, order = refetch(dispute), refetch(delivered.order)
    assert dispute.status == S.CANCELLED
    assert refetch(request).state == EvidenceRequest.State.MISSED
    assert order.status == OrderStatus.DELIVERED and money(order).held == Decimal("1400.00")


def test_evidence_missed_by_the_supplier_flags_the_case_to_decide(delivered, mediator):
    dispute = under_review(delivered, mediator)
    request = services.dispute_request_evidence(
        dispute=dispute,
        actor=mediator,
        requested_from="supplier",
        note="Your outgoing QC report.",
        due_at=clock.now() + timedelta(days=2),
    )

    with time_machine.travel(request.due_at + timedelta(minutes=1), tick=False):
        services.disputes_sweep_evidence_requests()

    dispute = refetch(dispute)
    assert dispute.status == S.UNDER_REVIEW and dispute.flagged_for_decision is True
    assert "decide" in dispute.flag_reason
    assert mediator.notifications.filter(title__contains="missed").exists()


def test_evidence_in_time_fulfils_the_request(delivered, mediator):
    dispute = under_review(delivered, mediator)
    request = services.dispute_request_evidence(
        dispute=dispute,
        actor=mediator,
        requested_from="supplier",
        note="QC report.",
        due_at=clock.now() + timedelta(days=2),
    )
    services.dispute_evidence_add(
        dispute=dispute, actor=delivered.supplier_user, files=[pdf("qc.pdf")]
    )
    with time_machine.travel(request.due_at + timedelta(minutes=1), tick=False):
        assert services.disputes_sweep_evidence_requests() == 0
    assert refetch(request).state == EvidenceRequest.State.FULFILLED
    assert refetch(dispute).flagged_for_decision is False


# --- inspection -------------------------------------------------------------------------------


def _inspection(parties, mediator):
    dispute = under_review(parties, mediator)
    inspector = inspector_for()
    inspection = services.dispute_order_inspection(
        dispute=dispute,
        actor=mediator,
        organisation=inspector.organisation,
        instructions="Drop-test 20 units.",
        fee_amount=Decimal("300.00"),
    )
    return dispute, inspection, inspector


def test_inspection_with_fee_refund_when_the_supplier_is_at_fault(delivered, mediator):
    # given an inspection ordered; the buyer pays the fee by card
    dispute, inspection, inspector = _inspection(delivered, mediator)
    assert refetch(dispute).status == S.AWAITING_INSPECTION
    pay_inspection_fee(inspection, delivered.buyer)
    inspection = refetch(inspection)
    assert inspection.state == Inspection.State.ASSIGNED and inspection.fee_paid_at is not None
    assert money(delivered.order).inspection_fee_held == Decimal("300.00")

    # when the inspector reports non-conformity and the mediator decides a full refund
    services.inspection_report_submit(
        inspection=inspection,
        actor=inspector,
        verdict=Inspection.Verdict.DOES_NOT_CONFORM,
        findings="14 of 20 cracked.",
        files=[pdf("report.pdf")],
    )
    assert refetch(dispute).status == S.UNDER_REVIEW
    services.dispute_decide(
        dispute=dispute,
        actor=mediator,
        terms=services.OutcomeTerms(remedy=Remedy.FULL_REFUND),
        reason="The inspection confirms the defect.",
    )

    # then the fee is refunded to the buyer on top of the escrow (charged to the supplier)
    summary = money(delivered.order)
    assert summary.inspection_fee_held == Decimal("0.00")
    assert summary.refunded == Decimal("1400.00")
    assert summary.refunds_in_transit == Decimal("1700.00")  # 1,400 escrow + 300 fee
    assert refetch(inspection).fee_settled is True
    event = refetch(dispute).events.get(action="decide")
    assert event.data["inspection_fees_settled"] == [inspection.pk]


def test_inspection_fee_pays_the_inspector_when_the_goods_conform(delivered, mediator):
    dispute, inspection, inspector = _inspection(delivered, mediator)
    pay_inspection_fee(inspection, delivered.buyer)
    services.inspection_report_submit(
        inspection=refetch(inspection),
        actor=inspector,
        verdict=Inspection.Verdict.CONFORMS,
        findings="All 20 passed.",
        files=[pdf("report.pdf")],
    )
    services.dispute_decide(
        dispute=dispute,
        actor=mediator,
        terms=services.OutcomeTerms(remedy=Remedy.NO_REFUND),
        reason="The goods conform.",
    )
    summary = money(delivered.order)
    assert summary.inspection_fee_held == Decimal("0.00")
    assert summary.refunds_in_transit == Decimal("0.00")
    assert summary.released == Decimal("1400.00")


def test_unpaid_inspection_fee_returns_the_case_to_the_mediator(delivered, mediator):
    dispute, inspection, _inspector = _inspection(delivered, mediator)
    with time_machine.travel(inspection.fee_due_at + timedelta(minutes=1), tick=False):
        assert services.disputes_sweep_inspection_fees() == 1
    dispute = refetch(dispute)
    assert dispute.status == S.UNDER_REVIEW and dispute.flagged_for_decision
    assert refetch(inspection).state == Inspection.State.CANCELLED


def test_another_inspection_company_cannot_report(delivered, mediator):
    dispute, inspection, _inspector = _inspection(delivered, mediator)
    pay_inspection_fee(inspection, delivered.buyer)
    from tradeassure.core.errors import NotFound

    with pytest.raises(NotFound):
        services.inspection_report_submit(
            inspection=refetch(inspection),
            actor=inspector_for(),
            verdict=Inspection.Verdict.CONFORMS,
            findings="x",
            files=[pdf()],
        )
    assert refetch(inspection).state == Inspection.State.ASSIGNED
    assert refetch(dispute).status == S.AWAITING_INSPECTION


def test_every_step_writes_an_event(delivered, mediator):
    dispute = under_review(delivered, mediator)
    actions = list(DisputeEvent.objects.filter(dispute=dispute).values_list("action", flat=True))
    assert actions == ["open", "escalate", "assign"]
