"""Quality checked before shipment: the buyer books a third-party inspection, pays the fee, the
supplier proposes dates, the inspector reports; "does not conform" blocks shipment until the
parties agree, and allows a quality claim before shipment. Through the pages, the admin and the
services, on PostgreSQL."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.urls import reverse

from accounts.models import Organisation
from orders import services
from orders.inspection import services as inspection_services
from orders.inspection.models import (
    InspectionStatus,
    PreshipmentInspection,
    PreshipmentInspectionEvent,
)
from orders.models import Coverage, Order, OrderStatus
from orders.transitions import SHIPMENT_BLOCKED
from payments.models import Account, Entry, Payment, Refund
from payments.selectors import escrow_summary, ledger_verify
from payments.services import payment_card_submit
from tests.factories import BuyerFactory, InspectorFactory, MediatorFactory, OrganisationFactory
from tests.orders.factories import (
    book_inspection,
    inspection_report_pdf,
    order_in,
    pay_inspection,
    report_inspection,
    ship,
    supplier_user_of,
)
from tests.orders.helpers import _changed_terms
from tradeassure.core import clock
from tradeassure.core.errors import DomainError, InvalidTransition, NotFound
from tradeassure.platform.models import DomainEvent

S = OrderStatus
IS = InspectionStatus
FEE = Decimal("300.00")
pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _earned() -> Decimal:
    return Entry.objects.filter(account__kind=Account.Kind.INSPECTION_FEES_EARNED).aggregate(
        total=Sum("amount")
    )["total"] or Decimal(0)


def _topics(order: Order) -> list[str]:
    return list(
        DomainEvent.objects.filter(subject_type="order", subject_id=order.pk)
        .filter(topic__startswith="order.inspection_")
        .order_by("id")
        .values_list("topic", flat=True)
    )


def _snapshot(order: Order) -> dict:
    order.refresh_from_db()
    return {
        "status": order.status,
        "blocked": order.shipment_blocked_by_inspection,
        "inspections": PreshipmentInspection.objects.filter(order=order).count(),
        "events": PreshipmentInspectionEvent.objects.filter(inspection__order=order).count(),
        "payments": Payment.objects.count(),
    }


# --- the whole path through the pages and the admin ------------------------------------------


def test_does_not_conform_then_a_new_contract_version_through_the_pages(client):
    # Given a paid order in production and an approved inspection company
    order = order_in(S.IN_PRODUCTION)
    supplier = supplier_user_of(order)
    inspector = InspectorFactory()
    buyer = order.buyer

    # When the buyer books from the order page
    client.force_login(buyer)
    page = client.get(order.get_absolute_url())
    assert b"Book a pre-shipment inspection" in page.content
    response = client.post(
        reverse("orders:inspection_book", args=[order.pk]),
        {"organisation": inspector.organisation_id, "instructions": "Output and drop test"},
    )
    assert response.status_code == 302
    inspection = PreshipmentInspection.objects.get(order=order)
    assert inspection.status == IS.AWAITING_FEE and inspection.fee_amount == FEE

    # ... and pays the fee through the payments provider (sandbox card)
    response = client.post(
        reverse("orders:inspection_pay", args=[order.pk, inspection.pk]), {"method": "card"}
    )
    payment = Payment.objects.get(purpose=Payment.Purpose.PRESHIPMENT_INSPECTION_FEE)
    assert response["Location"] == payment.get_absolute_url()
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        payment_card_submit(payment=payment, card_number="4242424242424242", actor=buyer)
    inspection.refresh_from_db()
    assert inspection.status == IS.SCHEDULED
    assert escrow_summary(escrow_reference=order.escrow_reference).inspection_fee_held == FEE

    # ... the supplier proposes dates from its order page
    client.force_login(supplier)
    first = clock.now().date() + timedelta(days=3)
    client.post(
        reverse("orders:inspection_dates", args=[order.pk, inspection.pk]),
        {"first": first.isoformat(), "note": "Factory open 9-17"},
    )
    inspection.refresh_from_db()
    assert inspection.proposed_dates == [first.isoformat()]

    # ... the inspector sees it on the inspector page and reports "does not conform"
    client.force_login(inspector)
    home = client.get(reverse("disputes:inspector_home"))
    assert f"Pre-shipment inspection {inspection.pk}".encode() in home.content
    assert client.get(reverse("orders:inspection_report", args=[inspection.pk])).status_code == 200
    response = client.post(
        reverse("orders:inspection_report", args=[inspection.pk]),
        {
            "verdict": "does_not_conform",
            "findings": "12 of 100 below 10 W",
            "files": [inspection_report_pdf()],
        },
    )
    assert response.status_code == 302

    # Then the fee is refunded to the buyer (charged to the supplier) and shipment is blocked
    inspection.refresh_from_db()
    order.refresh_from_db()
    assert inspection.status == IS.DOES_NOT_CONFORM and inspection.fee_refunded
    assert order.shipment_blocked_by_inspection
    assert Refund.objects.get(kind=Refund.Kind.INSPECTION_FEE).amount == FEE
    assert _earned() == FEE  # the inspector is paid either way; the supplier bears it
    assert ledger_verify().ok
    file = inspection.files.get()
    client.force_login(buyer)
    assert b"12 of 100 below 10 W" in client.get(order.get_absolute_url()).content
    assert (
        client.get(reverse("orders:inspection_file", args=[inspection.pk, file.pk])).status_code
        == 200
    )

    # ... the supplier cannot ship (a plain message), even once ready to ship
    client.force_login(supplier)
    order = services.order_request_balance(order=order, actor=supplier)
    from tests.orders.factories import pay

    order = pay(order)
    assert order.status == S.READY_TO_SHIP
    response = client.get(reverse("orders:ship", args=[order.pk]), follow=True)
    assert SHIPMENT_BLOCKED in response.content.decode()

    # When the parties agree a new contract version (proposed by the supplier, accepted by the
    # buyer on the order page)
    services.order_propose_changes(
        order=order, actor=supplier, terms=_changed_terms(order), note="Better batch"
    )
    client.force_login(buyer)
    client.post(reverse("orders:action", args=[order.pk, "accept_changes"]))

    # Then shipment is no longer blocked and the inspection records the agreement
    order.refresh_from_db()
    inspection.refresh_from_db()
    assert not order.shipment_blocked_by_inspection
    assert inspection.status == IS.RESOLVED and inspection.resolution == "contract_version"
    ship(order)
    order.refresh_from_db()
    assert order.status == S.SHIPPED
    assert _topics(order) == [
        "order.inspection_booked",
        "order.inspection_fee_paid",
        "order.inspection_dates_proposed",
        "order.inspection_reported",
        "order.inspection_resolved",
    ]
    # One timeline row per transition.
    assert list(inspection.events.values_list("action", flat=True)) == [
        "book",
        "fee_paid",
        "propose_dates",
        "report_does_not_conform",
        "resolve",
    ]

    # And mediators read it in the admin
    client.force_login(MediatorFactory())
    listing = client.get(
        reverse("admin:orders_preshipmentinspection_changelist"), {"status": "resolved"}
    )
    assert listing.status_code == 200 and str(order) in listing.content.decode()
    detail = client.get(reverse("admin:orders_preshipmentinspection_change", args=[inspection.pk]))
    assert detail.status_code == 200 and "12 of 100 below 10 W" in detail.content.decode()


def test_does_not_conform_then_cancellation_with_a_full_refund(client):
    # Given a non-conforming report on a paid order
    order = order_in(S.IN_PRODUCTION)
    inspection, inspector = book_inspection(order)
    pay_inspection(inspection)
    report_inspection(inspection, inspector, "does_not_conform")
    held = escrow_summary(escrow_reference=order.escrow_reference).held

    # When the buyer cancels with a full refund from the order page
    client.force_login(order.buyer)
    assert (
        b"Cancel with a full refund (inspection failed)"
        in client.get(order.get_absolute_url()).content
    )
    client.post(reverse("orders:action", args=[order.pk, "cancel_after_failed_inspection"]))

    # Then the order is refunded in full, the fee was refunded too, and the ledger balances
    order.refresh_from_db()
    inspection.refresh_from_db()
    assert order.status == S.REFUNDED
    assert inspection.status == IS.RESOLVED and inspection.resolution == "refund"
    assert Refund.objects.filter(kind=Refund.Kind.ESCROW).get().amount == held
    assert Refund.objects.get(kind=Refund.Kind.INSPECTION_FEE).amount == FEE
    assert escrow_summary(escrow_reference=order.escrow_reference).held == 0
    assert ledger_verify().ok


def test_conforms_pays_the_fee_to_the_inspection_company_and_shipment_goes_on(client):
    # Given a paid inspection
    order = order_in(S.READY_TO_SHIP)
    inspection, inspector = book_inspection(order)
    pay_inspection(inspection)

    # When the inspector reports on the page that the goods conform
    client.force_login(inspector)
    client.post(
        reverse("orders:inspection_report", args=[inspection.pk]),
        {"verdict": "conforms", "findings": "All fine", "files": [inspection_report_pdf()]},
    )

    # Then the fee is paid out to the inspection company, no refund, and the supplier ships
    inspection.refresh_from_db()
    assert inspection.status == IS.CONFORMS and not inspection.fee_refunded
    assert _earned() == FEE
    assert not Refund.objects.exists()
    assert escrow_summary(escrow_reference=order.escrow_reference).inspection_fee_held == 0
    assert ledger_verify().ok
    client.force_login(order.buyer)
    assert b"Conforms to the contract" in client.get(order.get_absolute_url()).content
    ship(order)
    order.refresh_from_db()
    assert order.status == S.SHIPPED


# --- refusals that change nothing -------------------------------------------------------------


def test_booking_before_the_initial_payment_is_refused():
    order = order_in(S.AWAITING_PAYMENT)
    before = _snapshot(order)
    with pytest.raises(InvalidTransition, match="initial payment"):
        book_inspection(order)
    assert _snapshot(order) == before


def test_booking_fewer_working_days_before_the_deadline_is_refused(settings):
    # Given a deadline 45 days ahead (about 32 working days) and a rule of 40 working days
    settings.PRESHIPMENT_INSPECTION = {**settings.PRESHIPMENT_INSPECTION, "WORKING_DAYS": 40}
    order = order_in(S.IN_PRODUCTION)
    before = _snapshot(order)
    with pytest.raises(InvalidTransition, match="40 working days"):
        book_inspection(order)
    assert _snapshot(order) == before


def test_an_unapproved_company_is_refused():
    order = order_in(S.IN_PRODUCTION)
    unapproved = InspectorFactory(
        organisation=OrganisationFactory(kind=Organisation.Kind.INSPECTION)
    )
    before = _snapshot(order)
    with pytest.raises(DomainError, match="approved"):
        book_inspection(order, inspector=unapproved)
    assert _snapshot(order) == before


def test_a_second_active_inspection_is_refused():
    order = order_in(S.IN_PRODUCTION)
    book_inspection(order)
    before = _snapshot(order)
    with pytest.raises(DomainError, match="already has an inspection"):
        book_inspection(order)
    assert _snapshot(order) == before


def test_outsiders_get_404_on_every_page(client):
    order = order_in(S.IN_PRODUCTION)
    inspection, _inspector = book_inspection(order)
    pay_inspection(inspection)
    before = _snapshot(order)
    client.force_login(BuyerFactory())
    for url in (
        reverse("orders:inspection_book", args=[order.pk]),
        reverse("orders:inspection_pay", args=[order.pk, inspection.pk]),
        reverse("orders:inspection_dates", args=[order.pk, inspection.pk]),
        reverse("orders:inspection_agree_replacement", args=[order.pk, inspection.pk]),
    ):
        assert client.post(url, {"method": "card", "first": "2030-01-01"}).status_code == 404
    assert client.get(reverse("orders:inspection_report", args=[inspection.pk])).status_code == 404
    # Another inspection company does not see it either.
    client.force_login(InspectorFactory())
    assert client.get(reverse("orders:inspection_report", args=[inspection.pk])).status_code == 404
    with pytest.raises(NotFound):
        inspection_services.preshipment_inspection_report(
            inspection=inspection,
            actor=InspectorFactory(),
            verdict="conforms",
            findings="x",
            files=[inspection_report_pdf()],
        )
    assert _snapshot(order) == before


def test_shipping_while_blocked_is_refused_with_a_plain_message():
    order = order_in(S.READY_TO_SHIP)
    inspection, inspector = book_inspection(order)
    pay_inspection(inspection)
    report_inspection(inspection, inspector, "does_not_conform")
    before = _snapshot(order)
    with pytest.raises(InvalidTransition) as refused:
        ship(order)
    assert refused.value.message == SHIPMENT_BLOCKED
    assert _snapshot(order) == before
    assert not order.shipments.exists()


def test_the_buyer_agrees_to_a_replacement_and_the_supplier_may_ship(client):
    order = order_in(S.READY_TO_SHIP)
    inspection, inspector = book_inspection(order)
    pay_inspection(inspection)
    report_inspection(inspection, inspector, "does_not_conform")
    client.force_login(order.buyer)
    client.post(
        reverse("orders:inspection_agree_replacement", args=[order.pk, inspection.pk]),
        {"note": "Replace the 12 units"},
    )
    inspection.refresh_from_db()
    assert inspection.status == IS.RESOLVED and inspection.resolution == "replacement"
    ship(order)
    order.refresh_from_db()
    assert order.status == S.SHIPPED


# --- the quality claim before shipment ---------------------------------------------------------


def test_a_quality_claim_is_allowed_before_shipment_after_a_non_conforming_report():
    from disputes import services as dispute_services
    from disputes.terms import OutcomeTerms

    # Given a pre-shipment (on-time shipment) coverage order, in production
    order = order_in(S.IN_PRODUCTION, coverage=Coverage.PRE_SHIPMENT)
    assert "quality" not in dict(dispute_services.dispute_allowed_types(order=order))
    inspection, inspector = book_inspection(order)
    pay_inspection(inspection)

    # When the inspector reports that the goods do not conform
    report_inspection(inspection, inspector, "does_not_conform")
    order.refresh_from_db()

    # Then the buyer may file a quality claim before shipment
    assert "quality" in dict(dispute_services.dispute_allowed_types(order=order))
    dispute = dispute_services.dispute_open(
        order=order,
        actor=order.buyer,
        type="quality",
        description="The inspection found 12 of 100 below spec.",
        terms=OutcomeTerms(remedy="full_refund"),
        evidence_files=[inspection_report_pdf()],
    )
    order.refresh_from_db()
    assert order.status == S.DISPUTED
    assert dispute.type == "quality"

    # And the mediator sees the report on the dispute case page
    from tests.otp import StaffVerifyingClient

    client = StaffVerifyingClient()
    client.force_login(MediatorFactory())
    case = client.get(reverse("admin:disputes_dispute_change", args=[dispute.pk]))
    assert case.status_code == 200
    assert "12 of 100 speakers below 10 W RMS." in case.content.decode()


def _with_cancelled_bookings(count: int, **kwargs) -> Order:
    order = order_in(S.IN_PRODUCTION, **kwargs)
    for _ in range(count):
        booked, _inspector = book_inspection(order)
        inspection_services.preshipment_inspection_cancel(inspection=booked, actor=order.buyer)
    return order


def test_the_order_page_runs_a_constant_number_of_queries(client, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    # Given one order with one inspection, another with three
    one = _with_cancelled_bookings(1)
    three = _with_cancelled_bookings(3, buyer=one.buyer)
    client.force_login(one.buyer)
    client.get(one.get_absolute_url())  # warm per-session caches
    with CaptureQueriesContext(connection) as queries:
        client.get(one.get_absolute_url())
    # Then more inspections cost no more queries
    with django_assert_max_num_queries(len(queries)):
        page = client.get(three.get_absolute_url())
    assert page.content.count(b"Inspection by ") == 3


def test_shipping_before_a_paid_inspection_took_place_returns_the_fee():
    # Given a paid inspection not yet reported
    order = order_in(S.READY_TO_SHIP)
    inspection, _inspector = book_inspection(order)
    pay_inspection(inspection)

    # When the supplier ships anyway
    ship(order)

    # Then the inspection is withdrawn and the buyer gets the fee back; nobody is charged
    inspection.refresh_from_db()
    assert inspection.status == IS.CANCELLED and inspection.fee_refunded
    assert Refund.objects.get(kind=Refund.Kind.INSPECTION_FEE).amount == FEE
    assert _earned() == 0
    assert escrow_summary(escrow_reference=order.escrow_reference).inspection_fee_held == 0
    assert ledger_verify().ok
    assert inspection.events.last().action == "withdraw"


def test_a_late_cancellation_withdraws_an_unpaid_booking():
    from tests.orders.factories import with_time_past_deadline

    order = order_in(S.IN_PRODUCTION)
    inspection, _inspector = book_inspection(order)
    with_time_past_deadline(order)
    services.order_cancel_late_with_refund(order=order, actor=order.buyer)
    inspection.refresh_from_db()
    assert inspection.status == IS.CANCELLED and not inspection.fee_refunded
    assert not Refund.objects.filter(kind=Refund.Kind.INSPECTION_FEE).exists()


def test_each_side_is_told_and_the_buyer_finds_it_under_needs_you():
    from orders.selectors import order_list
    from tradeassure.platform.models import Notification

    # Given a booking
    order = order_in(S.IN_PRODUCTION)
    supplier = supplier_user_of(order)
    inspection, inspector = book_inspection(order)

    # Then the supplier is told, and the fee to pay puts the order under the buyer's "Needs you"
    assert Notification.objects.filter(
        recipient=supplier, title__contains="booked a pre-shipment inspection"
    ).exists()
    assert order in order_list(user=order.buyer, party="buyer", status_filter="action")

    # When the fee is paid, the inspection company is told, with a link to its report page
    pay_inspection(inspection)
    told = Notification.objects.get(recipient=inspector, title__contains="new pre-shipment")
    assert told.url == inspection.get_inspector_url()
    assert order not in order_list(user=order.buyer, party="buyer", status_filter="action")

    # And a failed report puts it back under "Needs you"
    report_inspection(inspection, inspector, "does_not_conform")
    assert order in order_list(user=order.buyer, party="buyer", status_filter="action")


def test_the_inspector_page_runs_a_constant_number_of_queries(
    client, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    # Given an inspection company with one paid inspection, then with three
    inspector = InspectorFactory()
    first, _ = book_inspection(order_in(S.IN_PRODUCTION), inspector=inspector)
    pay_inspection(first)
    client.force_login(inspector)
    client.get(reverse("disputes:inspector_home"))
    with CaptureQueriesContext(connection) as queries:
        client.get(reverse("disputes:inspector_home"))
    for _ in range(2):
        more, _ = book_inspection(order_in(S.IN_PRODUCTION), inspector=inspector)
        pay_inspection(more)
    # Then the page lists them all with no more queries
    with django_assert_max_num_queries(len(queries)):
        page = client.get(reverse("disputes:inspector_home"))
    assert page.content.count(b"Pre-shipment inspection ") == 3


def test_a_quality_claim_settled_with_a_full_refund_ends_the_block():
    from disputes import services as dispute_services
    from disputes.terms import OutcomeTerms

    # Given a post-delivery order whose goods failed the inspection, and the buyer's claim
    order = order_in(S.IN_PRODUCTION)
    inspection, inspector = book_inspection(order)
    pay_inspection(inspection)
    report_inspection(inspection, inspector, "does_not_conform")
    order.refresh_from_db()
    dispute = dispute_services.dispute_open(
        order=order,
        actor=order.buyer,
        type="quality",
        description="Below spec, see the inspection report.",
        terms=OutcomeTerms(remedy="full_refund"),
        evidence_files=[inspection_report_pdf()],
    )
    held = escrow_summary(escrow_reference=order.escrow_reference).held
    proposal = dispute.proposals.get()

    # When the supplier accepts the buyer's full refund
    dispute_services.dispute_accept(
        dispute=dispute, actor=supplier_user_of(order), proposal_id=proposal.pk
    )

    # Then the order is refunded, the inspection records the settlement, the ledger balances
    order.refresh_from_db()
    inspection.refresh_from_db()
    assert order.status == S.REFUNDED and not order.shipment_blocked_by_inspection
    assert inspection.status == IS.RESOLVED and inspection.resolution == "dispute"
    assert Refund.objects.filter(kind=Refund.Kind.ESCROW).get().amount == held
    assert Refund.objects.filter(kind=Refund.Kind.INSPECTION_FEE).count() == 1
    assert ledger_verify().ok


@pytest.mark.parametrize(
    ("role", "may_book", "may_pay"),
    [("admin", True, True), ("purchasing", True, False), ("finance", False, True)],
)
def test_the_role_table_decides_who_books_and_who_pays_the_inspection(role, may_book, may_pay):
    from accounts.team import RoleNotAllowed
    from tests.accounts.factories import colleague_of

    # given an order in production and a buyer colleague with this team role
    order = order_in(S.IN_PRODUCTION)
    member = colleague_of(order.buyer, team_role=role)
    inspector = InspectorFactory()
    before = _snapshot(order)

    # when the member books an inspection
    if not may_book:
        with pytest.raises(RoleNotAllowed):
            inspection_services.preshipment_inspection_book(
                order=order, actor=member, organisation=inspector.organisation
            )
        # then nothing changed, and the page offers no booking form
        assert _snapshot(order) == before
        assert inspection_services.inspection_book_refusal(order=order, user=member)
        inspection, _ = book_inspection(order, inspector=inspector)
    else:
        inspection = inspection_services.preshipment_inspection_book(
            order=order, actor=member, organisation=inspector.organisation
        )
    assert inspection.status == InspectionStatus.AWAITING_FEE

    # when the member starts paying the fee
    if may_pay:
        payment = inspection_services.preshipment_inspection_fee_pay(
            inspection=inspection, actor=member, method="card"
        )
        assert payment.amount == inspection.fee_amount
    else:
        payments_before = Payment.objects.count()
        with pytest.raises(RoleNotAllowed):
            inspection_services.preshipment_inspection_fee_pay(
                inspection=inspection, actor=member, method="card"
            )
        assert Payment.objects.count() == payments_before
