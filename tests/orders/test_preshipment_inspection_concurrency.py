"""The pre-shipment inspection fee under concurrency, on PostgreSQL with real threads: two fee
payments started at once make one payment and one capture; two reports at once settle the fee
once (one refund, never two)."""

from decimal import Decimal

import pytest
from django.db.models import Sum

from orders.inspection import services as inspection_services
from orders.inspection.models import InspectionStatus, PreshipmentInspection
from orders.models import OrderStatus
from payments.models import Account, Entry, LedgerTransaction, Payment, Refund
from payments.selectors import escrow_summary, ledger_verify
from tests.orders.factories import book_inspection, inspection_report_pdf, order_in, pay_inspection
from tests.orders.test_concurrency import _capture_now, _race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_fee_payments_at_once_make_one_payment_and_one_capture():
    # Given a booked inspection
    order = order_in(OrderStatus.IN_PRODUCTION)
    inspection, _inspector = book_inspection(order)
    buyer = order.buyer

    # When the buyer starts the fee payment twice at once, and both captures arrive at once
    def start():
        return inspection_services.preshipment_inspection_fee_pay(
            inspection=inspection, actor=buyer, method="card"
        )

    outcomes = _race(start, start)
    payments = {result.pk for kind, result in outcomes if kind == "ok"}
    assert len(payments) == 1, outcomes
    payment = Payment.objects.get(pk=payments.pop())
    _race(lambda: _capture_now(payment), lambda: _capture_now(payment))

    # Then one payment, one capture: the fee is held once and the inspection is scheduled
    inspection.refresh_from_db()
    assert Payment.objects.filter(purpose=Payment.Purpose.PRESHIPMENT_INSPECTION_FEE).count() == 1
    assert (
        LedgerTransaction.objects.filter(kind=LedgerTransaction.Kind.INSPECTION_FEE_CAPTURE).count()
        == 1
    )
    assert inspection.status == InspectionStatus.SCHEDULED
    assert escrow_summary(escrow_reference=order.escrow_reference).inspection_fee_held == Decimal(
        "300.00"
    )
    assert inspection.events.filter(action="fee_paid").count() == 1
    assert ledger_verify().ok


def test_two_reports_at_once_settle_the_fee_once():
    # Given a paid inspection and two inspectors of the company
    order = order_in(OrderStatus.IN_PRODUCTION)
    inspection, inspector = book_inspection(order)
    pay_inspection(inspection)
    from tests.factories import InspectorFactory

    colleague = InspectorFactory(organisation=inspector.organisation)

    # When both report "does not conform" at the same moment
    def report(user):
        return lambda: inspection_services.preshipment_inspection_report(
            inspection=PreshipmentInspection.objects.get(pk=inspection.pk),
            actor=user,
            verdict="does_not_conform",
            findings="Below spec",
            files=[inspection_report_pdf()],
        )

    outcomes = _race(report(inspector), report(colleague))

    # Then one report wins, the other is refused, and the fee is refunded exactly once
    assert sorted(kind for kind, _ in outcomes) == ["error", "ok"], outcomes
    assert Refund.objects.filter(kind=Refund.Kind.INSPECTION_FEE).count() == 1
    assert (
        LedgerTransaction.objects.filter(kind=LedgerTransaction.Kind.INSPECTION_FEE_SETTLE).count()
        == 1
    )
    earned = Entry.objects.filter(account__kind=Account.Kind.INSPECTION_FEES_EARNED).aggregate(
        total=Sum("amount")
    )["total"]
    assert earned == Decimal("300.00")
    inspection.refresh_from_db()
    assert inspection.status == InspectionStatus.DOES_NOT_CONFORM
    assert inspection.files.count() == 1
    assert escrow_summary(escrow_reference=order.escrow_reference).inspection_fee_held == 0
    assert ledger_verify().ok


def test_two_fee_sweeps_at_once_lapse_an_unpaid_booking_once():
    from datetime import timedelta

    from tradeassure.core import clock

    # Given an unpaid booking past its fee due date, and a paid one
    order = order_in(OrderStatus.IN_PRODUCTION)
    unpaid, _ = book_inspection(order)
    PreshipmentInspection.objects.filter(pk=unpaid.pk).update(
        fee_due_at=clock.now() - timedelta(seconds=1)
    )
    other = order_in(OrderStatus.IN_PRODUCTION)
    paid, _ = book_inspection(other)
    pay_inspection(paid)

    # When two sweeps run at once
    outcomes = _race(
        inspection_services.preshipment_inspections_sweep_fees,
        inspection_services.preshipment_inspections_sweep_fees,
    )

    # Then the booking lapsed once; the paid one is untouched
    assert sorted(result for _kind, result in outcomes) == [0, 1], outcomes
    unpaid.refresh_from_db()
    paid.refresh_from_db()
    assert unpaid.status == InspectionStatus.CANCELLED and unpaid.fee_due_at is None
    assert unpaid.events.filter(action="fee_expired").count() == 1
    assert paid.status == InspectionStatus.SCHEDULED
    # And the buyer may book again
    again, _ = book_inspection(order)
    assert again.status == InspectionStatus.AWAITING_FEE


def test_a_fee_arriving_after_the_booking_lapsed_goes_back_to_the_buyer():
    from datetime import timedelta

    from tradeassure.core import clock

    order = order_in(OrderStatus.IN_PRODUCTION)
    inspection, _ = book_inspection(order)
    payment = inspection_services.preshipment_inspection_fee_pay(
        inspection=inspection, actor=order.buyer, method="bank_transfer"
    )
    PreshipmentInspection.objects.filter(pk=inspection.pk).update(
        fee_due_at=clock.now() - timedelta(seconds=1)
    )
    inspection_services.preshipment_inspections_sweep_fees()
    result = _capture_now(Payment.objects.get(pk=payment.pk))
    from tradeassure.platform.models import SystemAlert

    inspection.refresh_from_db()
    assert result == "applied", (
        result,
        list(SystemAlert.objects.values_list("message", flat=True)),
    )
    assert inspection.status == InspectionStatus.CANCELLED, inspection.status
    assert Refund.objects.get(kind=Refund.Kind.INSPECTION_FEE).amount == Decimal("300.00")
    assert escrow_summary(escrow_reference=order.escrow_reference).inspection_fee_held == 0
    assert ledger_verify().ok


def test_a_second_payment_of_the_same_fee_goes_back_to_the_buyer():
    # Given a booking the buyer starts paying by bank transfer, then by card
    order = order_in(OrderStatus.IN_PRODUCTION)
    inspection, _ = book_inspection(order)
    transfer = inspection_services.preshipment_inspection_fee_pay(
        inspection=inspection, actor=order.buyer, method="bank_transfer"
    )
    card = inspection_services.preshipment_inspection_fee_pay(
        inspection=inspection, actor=order.buyer, method="card"
    )

    # When both arrive
    _capture_now(Payment.objects.get(pk=card.pk))
    _capture_now(Payment.objects.get(pk=transfer.pk))

    # Then one pays the fee and the other goes back: one fee held, never two
    inspection.refresh_from_db()
    assert inspection.status == InspectionStatus.SCHEDULED
    assert inspection.fee_payment_id == card.pk
    assert Refund.objects.get(kind=Refund.Kind.INSPECTION_FEE).amount == Decimal("300.00")
    assert escrow_summary(escrow_reference=order.escrow_reference).inspection_fee_held == Decimal(
        "300.00"
    )
    assert ledger_verify().ok
