"""Order pages as a new user met them: shipment files after a validation error, the payment
method select's label."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from orders.models import OrderStatus, ShipmentDocument
from tests.orders.factories import PDF_BYTES, order_in, supplier_user_of

pytestmark = pytest.mark.django_db


def _pdf(name: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, PDF_BYTES, content_type="application/pdf")


def test_chosen_shipment_files_are_asked_for_again_after_a_validation_error(client):
    # given an order ready to ship
    order = order_in(OrderStatus.READY_TO_SHIP)
    client.force_login(supplier_user_of(order))
    # when the supplier submits with the tracking number missing
    response = client.post(
        reverse("orders:ship", args=[order.pk]),
        {
            "carrier": "Maersk",
            "tracking_number": "",
            "shipped_on": "2026-12-01",
            "commercial_invoice": _pdf("invoice-77.pdf"),
            "bill_of_lading": _pdf("bl-77.pdf"),
            "packing_list": _pdf("packing-77.pdf"),
        },
    )
    # then nothing is saved and the page names each chosen file and asks for it again
    assert response.status_code == 400
    body = response.content.decode()
    assert "Nothing was saved." in body
    for name in ("invoice-77.pdf", "bl-77.pdf", "packing-77.pdf"):
        assert f"You chose “{name}”: choose it again" in body
    assert not ShipmentDocument.objects.filter(shipment__order=order).exists()
    order.refresh_from_db()
    assert order.status == OrderStatus.READY_TO_SHIP


def test_the_first_visit_to_the_shipment_form_asks_nothing_again(client):
    order = order_in(OrderStatus.READY_TO_SHIP)
    client.force_login(supplier_user_of(order))
    body = client.get(reverse("orders:ship", args=[order.pk])).content.decode()
    assert "Nothing was saved." not in body and "choose it again" not in body


def test_the_payment_method_select_has_a_name(client):
    order = order_in(OrderStatus.AWAITING_PAYMENT)
    client.force_login(order.buyer)
    body = client.get(order.get_absolute_url()).content.decode()
    assert 'aria-label="Payment method"' in body
