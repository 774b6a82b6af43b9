"""A settlement and a mediator decision racing on one dispute (PostgreSQL, real threads)."""

import threading
from decimal import Decimal

import pytest
from django.db import connection

from disputes import services
from disputes.models import Dispute, DisputeEvent, DisputeStatus, Remedy
from payments.models import LedgerTransaction
from payments.selectors import escrow_summary
from tests.disputes.factories import parties_for, under_review
from tests.factories import MediatorFactory
from tradeassure.core.errors import DomainError

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _race(*calls):
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait()
            call()
            results[index] = "ok"
        except DomainError as error:
            results[index] = error
        except Exception as error:
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


@pytest.mark.parametrize("repeat", range(3))
def test_settlement_and_decision_race_and_exactly_one_executes(repeat):
    # given a dispute under review with the supplier's open offer of a USD 200 refund
    mediator = MediatorFactory()
    parties = parties_for("delivered")
    dispute = under_review(parties, mediator)
    offer = services.dispute_propose(
        dispute=dispute,
        actor=parties.supplier_user,
        terms=services.OutcomeTerms(remedy=Remedy.PARTIAL_REFUND, refund_amount=Decimal("200.00")),
    )

    # when the buyer accepts it while the mediator decides a full refund, at the same moment
    results = _race(
        lambda: services.dispute_accept(
            dispute=Dispute.objects.get(pk=dispute.pk), actor=parties.buyer, proposal_id=offer.pk
        ),
        lambda: services.dispute_decide(
            dispute=Dispute.objects.get(pk=dispute.pk),
            actor=mediator,
            terms=services.OutcomeTerms(remedy=Remedy.FULL_REFUND),
            reason="Full refund.",
        ),
    )

    # then exactly one outcome executed; the other was refused as a conflict, not a crash
    assert results.count("ok") == 1, results
    loser = next(r for r in results if r != "ok")
    assert isinstance(loser, DomainError) and loser.status == 409, repr(loser)
    dispute = Dispute.objects.get(pk=dispute.pk)
    assert dispute.status == DisputeStatus.RESOLVED
    resolving = DisputeEvent.objects.filter(dispute=dispute, action__in=["accept", "decide"])
    assert resolving.count() == 1
    # and money moved once: one refund transaction, of the winner's amount
    summary = escrow_summary(escrow_reference=parties.order.escrow_reference)
    refunds = LedgerTransaction.objects.filter(
        escrow__reference=parties.order.escrow_reference, kind=LedgerTransaction.Kind.REFUND
    )
    assert refunds.count() == 1
    expected = Decimal("200.00") if resolving.get().action == "accept" else Decimal("1400.00")
    assert summary.refunded == expected
    assert summary.held + summary.released + summary.refunded == Decimal("1400.00")


@pytest.mark.parametrize("repeat", range(3))
def test_inspection_fee_capture_racing_a_decision_never_deadlocks(repeat):
    from payments.providers.sandbox import event_body
    from payments.tasks import sandbox_deliver_event
    from tests.disputes.factories import inspector_for
    from tradeassure.platform.models import SystemAlert

    # given an inspection whose fee payment the buyer has started (not yet captured)
    mediator = MediatorFactory()
    parties = parties_for("delivered")
    dispute = under_review(parties, mediator)
    inspection = services.dispute_order_inspection(
        dispute=dispute,
        actor=mediator,
        organisation=inspector_for().organisation,
        instructions="Drop test.",
        fee_amount=Decimal("300.00"),
    )
    payment = services.dispute_inspection_fee_pay(
        inspection=inspection, actor=parties.buyer, method="card"
    )
    captured = event_body(
        "payment.captured",
        payment.provider_reference,
        amount=payment.amount,
        currency=payment.currency,
        charge_id=f"ch_race_{payment.pk}",
    )

    # when the provider's capture arrives while the mediator decides a full refund
    results = _race(
        lambda: sandbox_deliver_event(captured),
        lambda: services.dispute_decide(
            dispute=Dispute.objects.get(pk=dispute.pk),
            actor=mediator,
            terms=services.OutcomeTerms(remedy=Remedy.FULL_REFUND),
            reason="Defective.",
        ),
    )

    # then both complete (escrow → order → inspection everywhere: no deadlock) ...
    assert results == ["ok", "ok"], results
    summary = escrow_summary(escrow_reference=parties.order.escrow_reference)
    assert Dispute.objects.get(pk=dispute.pk).status == DisputeStatus.RESOLVED
    assert summary.refunded == Decimal("1400.00")
    inspection.refresh_from_db()
    if inspection.fee_settled:
        # ... the fee arrived first: it went back to the buyer with the decision
        from payments.models import Refund

        assert summary.inspection_fee_held == Decimal("0.00")
        fee_refund = Refund.objects.get(
            escrow__reference=parties.order.escrow_reference, kind=Refund.Kind.INSPECTION_FEE
        )
        assert fee_refund.amount == Decimal("300.00")
    else:
        # ... or the decision came first: the late fee is held and staff are alerted to return it
        assert summary.inspection_fee_held == Decimal("300.00")
        assert SystemAlert.objects.filter(source="disputes").count() == 1
