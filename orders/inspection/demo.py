"""A pre-shipment inspection waiting for its report (called by `orders.demo.seed`): the buyer of
the demo order in production booked the demo inspection company and paid the fee, the supplier
proposed dates. Log in as the demo inspector (`inspector@demo.tradeassure.dev`) and open
/disputes/inspections/ to write the report. Idempotent; written through the services."""

from datetime import timedelta

from accounts.models import User
from accounts.selectors import inspection_companies_approved
from orders.inspection import services
from orders.inspection.models import PreshipmentInspection
from orders.models import Order
from tradeassure.core import clock
from tradeassure.core.errors import DomainError

ORDER = "DEMO-O-in-production"


def seed(users: dict[str, User]) -> None:
    order = (
        Order.objects.select_related("supplier__organisation", "buyer")
        .filter(purchase_order_number=ORDER)
        .first()
    )
    inspector = users.get("inspector")
    company = (
        inspector.organisation
        if inspector is not None and inspector.organisation is not None
        else inspection_companies_approved().first()
    )
    if order is None or company is None or not company.inspection_approved:
        return
    if PreshipmentInspection.objects.filter(order=order).exists():
        return
    staff = users.get("supplier")
    try:
        inspection = services.preshipment_inspection_book(
            order=order,
            actor=order.buyer,
            organisation=company,
            instructions="Sample 20 units: battery life ≥ 5 h, pairing range ≥ 10 m, logo print.",
        )
        payment = services.preshipment_inspection_fee_pay(
            inspection=inspection, actor=order.buyer, method="card"
        )
        _capture(payment)
        if staff is not None:
            today = clock.now().date()
            services.preshipment_inspection_propose_dates(
                inspection=inspection,
                actor=staff,
                dates=[today + timedelta(days=2), today + timedelta(days=3)],
                note="The batch is packed at our Shenzhen warehouse.",
            )
    except DomainError:
        return  # the demo order no longer fits (e.g. its deadline moved): leave it


def _capture(payment) -> None:
    from payments.providers.sandbox import event_body
    from payments.tasks import sandbox_deliver_event

    sandbox_deliver_event(
        event_body(
            "payment.captured",
            payment.provider_reference,
            amount=payment.amount,
            currency=payment.currency,
            charge_id=f"ch_demo_inspection_{payment.pk}",
        )
    )
