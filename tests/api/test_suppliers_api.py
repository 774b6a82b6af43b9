"""Public supplier, product and category reads."""

import pytest
from rest_framework.test import APIClient

from tests.factories import BuyerFactory
from tests.suppliers.factories import (
    CategoryFactory,
    ProductFactory,
    SupplierFactory,
    TradeAssuredSupplierFactory,
)

pytestmark = pytest.mark.django_db


def test_directory_is_public_and_filterable(api_client_for):
    # given a Trade Assured supplier in CN with a category, and a plain one in MY
    category = CategoryFactory(name="Electronics", slug="electronics")
    assured = TradeAssuredSupplierFactory(legal_name="Brightway", country="CN")
    assured.categories.add(category)
    plain = SupplierFactory(legal_name="Penang Moulding", country="MY")
    ProductFactory(supplier=plain, name="Gear housing")
    anonymous = APIClient()

    # when anyone lists and filters
    def ids(query=""):
        response = anonymous.get(f"/api/v1/suppliers/{query}")
        assert response.status_code == 200
        return [row["id"] for row in response.json()["results"]]

    # then
    assert ids() == [assured.pk, plain.pk]
    assert ids("?trade_assurance=true") == [assured.pk]
    assert ids("?country=my") == [plain.pk]
    assert ids("?category=electronics") == [assured.pk]
    assert ids("?q=gear") == [plain.pk]
    body = anonymous.get(f"/api/v1/suppliers/{assured.pk}/").json()
    assert body["trade_assurance"] is True
    assert body["categories"] == ["electronics"]
    assert body["metrics"]["window_days"] == 180
    # and an API key sees the same
    assert api_client_for(BuyerFactory()).get("/api/v1/suppliers/").status_code == 200


def test_only_active_products_are_public():
    active = ProductFactory(name="Active")
    hidden = ProductFactory(name="Hidden", is_active=False)
    client = APIClient()
    assert [row["id"] for row in client.get("/api/v1/products/").json()["results"]] == [active.pk]
    assert client.get(f"/api/v1/products/{hidden.pk}/").status_code == 404
    body = client.get(f"/api/v1/products/{active.pk}/").json()
    assert body["unit_price"] == "2.50"
    assert body["supplier_id"] == active.supplier_id


def test_products_filter_by_supplier_and_order_by_price():
    supplier = SupplierFactory()
    cheap = ProductFactory(supplier=supplier, unit_price="1.00")
    dear = ProductFactory(supplier=supplier, unit_price="9.00")
    ProductFactory()
    client = APIClient()
    response = client.get(f"/api/v1/products/?supplier={supplier.pk}&ordering=-unit_price")
    assert [row["id"] for row in response.json()["results"]] == [dear.pk, cheap.pk]


@pytest.mark.parametrize("rows", [2, 12])
def test_directory_runs_a_constant_number_of_queries(rows, django_assert_max_num_queries):
    category = CategoryFactory()
    for _ in range(rows):
        TradeAssuredSupplierFactory().categories.add(category)
    client = APIClient()
    with django_assert_max_num_queries(3):
        response = client.get("/api/v1/suppliers/")
    assert len(response.json()["results"]) == rows
