"""Staff see orders by permission, not by `is_staff`: vetting staff (who vet suppliers) see no
order, its shipping documents or its dispute; mediators (whose group grants the order and
dispute view permissions) see what they mediate."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from orders import selectors
from orders.models import OrderStatus
from tests.factories import MediatorFactory, VettingFactory
from tests.orders.factories import order_in
from tests.otp import StaffVerifyingClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def shipped():
    order = order_in(OrderStatus.SHIPPED)
    document = order.shipment.documents.first()
    assert document is not None
    return order, document


def _page_client(user) -> StaffVerifyingClient:
    client = StaffVerifyingClient()
    client.force_login(user)
    return client


def _api_client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_vetting_staff_get_404_for_an_order_its_documents_and_its_api(shipped):
    # given a shipped order with documents, and a member of the vetting staff
    order, document = shipped
    vetting = VettingFactory()
    assert vetting.is_staff and not vetting.has_perm("orders.view_order")
    page, api = _page_client(vetting), _api_client(vetting)

    # when they ask for the order page, its shipping document, and the same through the API
    responses = {
        "page": page.get(order.get_absolute_url()),
        "document": page.get(reverse("orders:shipment_document", args=[order.pk, document.pk])),
        "api detail": api.get(f"/api/v1/orders/{order.pk}/"),
        "api document": api.get(f"/api/v1/orders/{order.pk}/documents/{document.pk}/"),
    }
    listed = api.get("/api/v1/orders/")

    # then every one is a 404 and no list shows the order
    assert {name: r.status_code for name, r in responses.items()} == dict.fromkeys(responses, 404)
    assert listed.status_code == 200 and listed.json()["results"] == []
    assert not selectors.orders_visible_to(vetting).exists()


def test_a_mediator_still_sees_the_order_and_its_documents(shipped):
    # given the same order and a mediator (order and dispute view permissions by their group)
    order, document = shipped
    mediator = MediatorFactory()
    page, api = _page_client(mediator), _api_client(mediator)

    # when they read the order, download its document and read it through the API
    detail = page.get(order.get_absolute_url())
    download = page.get(reverse("orders:shipment_document", args=[order.pk, document.pk]))
    api_detail = api.get(f"/api/v1/orders/{order.pk}/")

    # then they get all three
    assert (detail.status_code, download.status_code, api_detail.status_code) == (200, 200, 200)
    assert api_detail.json()["id"] == order.pk


def test_staff_without_the_permission_see_nothing_even_with_is_staff(shipped):
    # given a mediator whose group lost the order view permission
    order, _ = shipped
    mediator = MediatorFactory()
    mediator.groups.clear()

    # then is_staff alone shows no order
    assert _page_client(mediator).get(order.get_absolute_url()).status_code == 404
    assert not selectors.orders_visible_to(mediator).exists()
