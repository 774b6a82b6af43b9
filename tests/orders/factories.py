"""Factories and builders for orders. Orders are built through the services, never by hand,
so every order in a test got where it is the way a real one would."""

from datetime import date, timedelta
from decimal import Decimal

import factory
from django.test import TestCase

from orders import services
from orders.models import Coverage, Order, OrderStatus, ShipmentDocument
from payments.services import payment_card_submit
from tests.factories import BuyerFactory
from tests.suppliers.factories import TradeAssuredSupplierFactory, supplier_staff_for
from tradeassure.core import clock

S = OrderStatus
PDF_BYTES = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


class LineItemTermsFactory(factory.Factory):
    class Meta:
        model = services.LineItemTerms

    description = factory.Sequence(lambda n: f"Bluetooth speaker model {n}")
    quality_requirements = "Output ≥ 10 W RMS; battery ≥ 2000 mAh; drop test 1.2 m, no damage"
    quantity = Decimal("100")
    unit = "pcs"
    unit_price = Decimal("12.50")
    specifications = "Black ABS housing, USB-C charging"
    product_id = None


class ContractTermsFactory(factory.Factory):
    class Meta:
        model = services.ContractTerms

    currency = "USD"
    coverage = Coverage.POST_DELIVERY
    items = factory.LazyFunction(lambda: [LineItemTermsFactory()])
    shipment_deadline = factory.LazyFunction(lambda: clock.now() + timedelta(days=45))
    incoterm = "FOB"
    destination = "Felixstowe, GB"
    shipping_method = "sea"
    shipping_fee = Decimal("150.00")
    initial_payment_amount = Decimal("400.00")  # of 1,400.00: balance 1,000.00
    packaging = "Retail box, 20 per carton"
    customisation = "Logo printed on the grille"


def trade_assured_supplier(**kwargs):
    kwargs.setdefault("ta_limit_usd", Decimal("500000.00"))
    return TradeAssuredSupplierFactory(**kwargs)


def place_order(*, buyer=None, supplier=None, purchase_order_number="", **terms) -> Order:
    buyer = buyer or BuyerFactory()
    supplier = supplier or trade_assured_supplier()
    return services.order_place(
        buyer=buyer,
        supplier=supplier,
        terms=ContractTermsFactory(**terms),
        purchase_order_number=purchase_order_number,
    )


def supplier_user_of(order: Order):
    from accounts.models import User

    existing = User.objects.filter(
        organisation=order.supplier.organisation, role=User.Role.SUPPLIER_STAFF
    ).first()
    return existing or supplier_staff_for(order.supplier)


def pay(order: Order, *, card: str = "4242424242424242") -> Order:
    """The buyer pays what is due now by sandbox card; the capture runs like in production."""
    payment = services.order_payment_start(order=order, actor=order.buyer, method="card")
    with TestCase.captureOnCommitCallbacks(execute=True):
        payment_card_submit(payment=payment, card_number=card, actor=order.buyer)
    order.refresh_from_db()
    return order


def shipping_documents():
    from django.core.files.uploadedfile import SimpleUploadedFile

    return [
        services.ShipmentDocumentUpload(
            kind=kind, file=SimpleUploadedFile(f"{kind}.pdf", PDF_BYTES, "application/pdf")
        )
        for kind in (
            ShipmentDocument.Kind.COMMERCIAL_INVOICE,
            ShipmentDocument.Kind.BILL_OF_LADING,
            ShipmentDocument.Kind.PACKING_LIST,
        )
    ]


def ship(order: Order) -> Order:
    return services.order_ship(
        order=order,
        actor=supplier_user_of(order),
        carrier="Maersk",
        tracking_number="MSKU1234567",
        shipped_on=clock.now().date(),
        documents=shipping_documents(),
    )


def order_in(status: str, **terms) -> Order:
    """An order brought to `status` through the services (post-delivery, with a balance,
    unless the terms say otherwise)."""
    order = place_order(**terms)
    if status == S.PENDING_CONFIRMATION:
        return order
    supplier_user = supplier_user_of(order)
    if status == S.CANCELLED:
        return services.order_cancel(order=order, actor=order.buyer, reason="Changed plans")
    order = services.order_confirm(order=order, actor=supplier_user)
    if status == S.AWAITING_PAYMENT:
        return order
    order = pay(order)
    if status == S.IN_PRODUCTION:
        return order
    if status == S.AWAITING_BALANCE:
        return services.order_request_balance(order=order, actor=supplier_user)
    if order.balance_amount > 0:
        order = services.order_request_balance(order=order, actor=supplier_user)
        order = pay(order)
    else:
        order = services.order_mark_ready(order=order, actor=supplier_user)
    if status == S.READY_TO_SHIP:
        return order
    if status == S.REFUNDED:
        with_time_past_deadline(order)
        return services.order_cancel_late_with_refund(order=order, actor=order.buyer)
    order = ship(order)
    if status == S.SHIPPED:
        return order
    order = services.order_confirm_receipt(order=order, actor=order.buyer)
    if status in (S.DELIVERED, S.COMPLETED) and order.status == status:
        return order
    return services.order_accept_goods(order=order, actor=order.buyer)


def with_time_past_deadline(order: Order) -> Order:
    """Make the shipment deadline pass (as the sweep would see it) and let the sweep flag it."""
    Order.objects.filter(pk=order.pk).update(
        shipment_due_at=clock.now() - timedelta(seconds=1),
        shipment_deadline=clock.now() - timedelta(seconds=1),
    )
    services.orders_sweep_shipment_deadlines()
    order.refresh_from_db()
    return order


def today() -> date:
    return clock.now().date()


# --- the pre-shipment inspection ------------------------------------------------------------
def inspection_report_pdf(name: str = "report.pdf"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, PDF_BYTES, "application/pdf")


def book_inspection(order: Order, *, inspector=None, instructions: str = "Check the output"):
    """The buyer books an approved inspection company; returns (inspection, inspector user)."""
    from orders.inspection import services as inspection_services
    from tests.factories import InspectorFactory

    inspector = inspector or InspectorFactory()
    inspection = inspection_services.preshipment_inspection_book(
        order=order,
        actor=order.buyer,
        organisation=inspector.organisation,
        instructions=instructions,
    )
    return inspection, inspector


def pay_inspection(inspection) -> None:
    """The buyer pays the inspection fee by sandbox card; the capture runs like in production."""
    from orders.inspection import services as inspection_services

    buyer = inspection.order.buyer
    payment = inspection_services.preshipment_inspection_fee_pay(
        inspection=inspection, actor=buyer, method="card"
    )
    with TestCase.captureOnCommitCallbacks(execute=True):
        payment_card_submit(payment=payment, card_number="4242424242424242", actor=buyer)
    inspection.refresh_from_db()


def report_inspection(inspection, inspector, verdict: str):
    from orders.inspection import services as inspection_services

    with TestCase.captureOnCommitCallbacks(execute=True):
        return inspection_services.preshipment_inspection_report(
            inspection=inspection,
            actor=inspector,
            verdict=verdict,
            findings="12 of 100 speakers below 10 W RMS."
            if verdict == "does_not_conform"
            else "All sampled units meet the contract.",
            files=[inspection_report_pdf()],
        )
