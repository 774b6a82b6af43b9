"""The pre-shipment inspection in the API: book, pay the fee (idempotent), propose dates, the
inspector's report (multipart), read; outsiders 404; refusals are problem+json and change
nothing."""

from datetime import timedelta
from itertools import count

import pytest

from orders.inspection.models import InspectionStatus, PreshipmentInspection
from orders.models import OrderStatus
from payments.models import Payment
from tests.factories import BuyerFactory, InspectorFactory, OrganisationFactory
from tests.orders.factories import (
    inspection_report_pdf,
    order_in,
    pay_inspection,
    supplier_user_of,
)
from tradeassure.core import clock

pytestmark = pytest.mark.django_db
URL = "/api/v1/preshipment-inspections/"
_keys = count()


def _post(client, url, data, fmt="json", key=None):
    return client.post(url, data, format=fmt, HTTP_IDEMPOTENCY_KEY=key or f"preship-{next(_keys)}")


def test_the_whole_path_through_the_api(api_client_for, django_capture_on_commit_callbacks):
    # Given a paid order and an approved inspection company
    order = order_in(OrderStatus.IN_PRODUCTION)
    inspector = InspectorFactory()
    buyer = api_client_for(order.buyer)

    # When the buyer books
    response = _post(
        buyer, URL, {"order_id": order.pk, "organisation_id": inspector.organisation_id}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "awaiting_fee" and body["fee_amount"] == "300.00"
    inspection = PreshipmentInspection.objects.get(pk=body["id"])

    # ... pays the fee twice with the same key: one payment, the same answer
    pay_url = f"{URL}{inspection.pk}/pay-fee/"
    first = _post(buyer, pay_url, {"method": "card"}, key="fee-1")
    again = _post(buyer, pay_url, {"method": "card"}, key="fee-1")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert Payment.objects.filter(purpose=Payment.Purpose.PRESHIPMENT_INSPECTION_FEE).count() == 1
    pay_inspection(inspection)  # the card is handed over; the capture runs
    assert inspection.status == InspectionStatus.SCHEDULED

    # ... the supplier proposes dates
    supplier = api_client_for(supplier_user_of(order))
    day = (clock.now() + timedelta(days=4)).date().isoformat()
    response = _post(supplier, f"{URL}{inspection.pk}/propose-dates/", {"dates": [day]})
    assert response.status_code == 200 and response.json()["proposed_dates"] == [day]

    # ... the inspection company sees it and reports (multipart)
    company = api_client_for(inspector)
    listed = company.get(URL).json()["results"]
    assert [row["id"] for row in listed] == [inspection.pk]
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(
            company,
            f"{URL}{inspection.pk}/report/",
            {
                "verdict": "does_not_conform",
                "findings": "Below spec",
                "files": [inspection_report_pdf()],
            },
            fmt="multipart",
        )
    assert response.status_code == 200, response.content

    # Then everyone reads the report; shipment is blocked
    read = buyer.get(f"{URL}{inspection.pk}/").json()
    assert read["verdict"] == "does_not_conform" and read["blocks_shipment"] is True
    assert read["fee_refunded"] is True and len(read["files"]) == 1
    download = buyer.get(f"{URL}{inspection.pk}/files/{read['files'][0]['id']}/")
    assert download.status_code == 200
    assert [event["action"] for event in read["events"]] == [
        "book",
        "fee_paid",
        "propose_dates",
        "report_does_not_conform",
    ]


def test_outsiders_get_404_and_nothing_changes(api_client_for):
    order = order_in(OrderStatus.IN_PRODUCTION)
    inspector = InspectorFactory()
    outsider = api_client_for(BuyerFactory())
    response = _post(
        outsider, URL, {"order_id": order.pk, "organisation_id": inspector.organisation_id}
    )
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert not PreshipmentInspection.objects.exists()


def test_an_unapproved_company_is_a_400_and_nothing_changes(api_client_for):
    order = order_in(OrderStatus.IN_PRODUCTION)
    unapproved = OrganisationFactory(kind="inspection")
    response = _post(
        api_client_for(order.buyer), URL, {"order_id": order.pk, "organisation_id": unapproved.pk}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "inspection_company_not_approved"
    assert not PreshipmentInspection.objects.exists()


def test_booking_before_the_initial_payment_is_a_409(api_client_for):
    order = order_in(OrderStatus.AWAITING_PAYMENT)
    response = _post(
        api_client_for(order.buyer),
        URL,
        {"order_id": order.pk, "organisation_id": InspectorFactory().organisation_id},
    )
    assert response.status_code == 409
    assert response.json()["code"] == "inspection_before_initial_payment"
    assert not PreshipmentInspection.objects.exists()
