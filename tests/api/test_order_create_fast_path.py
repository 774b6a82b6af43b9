"""`POST /api/v1/orders/` written in few statements and answered from what was written.

Each faster path keeps what the slow one refused: an unknown or ineligible supplier, an order
over the limit (also when two arrive at once), a reused Idempotency-Key. Query counts are taken
with the request in autocommit, as in production (`transaction=True`), where each transaction
costs a BEGIN and a COMMIT in the count.
"""

import threading
from decimal import Decimal

import pytest
from django.db import connection

from orders.models import ContractVersion, Order, OrderEvent
from suppliers.models import SupplierOrderRecord
from tests.api.test_orders_api import _terms
from tests.factories import BuyerFactory
from tests.orders.factories import trade_assured_supplier
from tests.suppliers.factories import SupplierFactory, supplier_staff_for
from tradeassure.platform.models import DomainEvent, Notification, OutboxMessage

ORDERS = "/api/v1/orders/"
# Production count (autocommit): API key 1, idempotency claim 1 and its completion 1; the order's
# transaction BEGIN + COMMIT, the supplier's lock and open exposure; the order, version 1, its
# lines and its timeline row in one statement; the domain event with its audience in one; the
# supplier record, the staff read, their notifications, the outbox rows.
CREATE_QUERIES = 13


def _post(client, data: dict, key: str):
    return client.post(ORDERS, data, format="json", HTTP_IDEMPOTENCY_KEY=key)


def _nothing_written() -> dict[str, int]:
    return {
        "orders": Order.objects.count(),
        "versions": ContractVersion.objects.count(),
        "events": OrderEvent.objects.count(),
        "records": SupplierOrderRecord.objects.count(),
        "domain_events": DomainEvent.objects.count(),
        "notifications": Notification.objects.count(),
        "outbox": OutboxMessage.objects.count(),
    }


@pytest.fixture
def celery_messages(monkeypatch) -> list[str]:
    """The Celery messages sent after commit, by task name (instead of the broker)."""
    from suppliers.tasks import recompute_supplier_metrics
    from tradeassure.platform.tasks import dispatch_outbox

    sent: list[str] = []
    monkeypatch.setattr(dispatch_outbox, "delay", lambda *a, **k: sent.append("dispatch_outbox"))
    monkeypatch.setattr(
        recompute_supplier_metrics, "delay", lambda *a, **k: sent.append("recompute_metrics")
    )
    return sent


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_create_runs_a_bounded_number_of_queries_and_answers_what_a_read_answers(
    api_client_for, django_assert_max_num_queries, celery_messages
):
    # given a buyer with an API key (used once, so its last-used minute is recorded) and a
    # supplier with one member of staff to tell
    supplier = trade_assured_supplier()
    staff = supplier_staff_for(supplier)
    api = api_client_for(BuyerFactory())
    assert api.get(ORDERS).status_code == 200

    # when the buyer places an order
    data = {"supplier_id": supplier.pk, "terms": _terms()}
    with django_assert_max_num_queries(CREATE_QUERIES):
        created = _post(api, data, "fast-1")

    # then it is created, and the answer built from what was written is what a read answers
    assert created.status_code == 201, created.json()
    body = created.json()
    read = api.get(f"{ORDERS}{body['id']}/").json()
    assert body == read
    assert body["status"] == "pending_confirmation"
    assert body["contract"]["items"][0]["line_total"] == "1250.00"
    assert [row["action"] for row in body["timeline"]] == ["place"]
    # and everything the slow path wrote is there
    order = Order.objects.get(pk=body["id"])
    assert order.current_version.number == 1
    assert order.current_version.order_id == order.pk
    assert list(order.current_version.items.values_list("position", flat=True)) == [1]
    assert list(order.events.values_list("action", "from_status", "to_status")) == [
        ("place", "", "pending_confirmation")
    ]
    assert order.summary == "USB-C charger 65 W"
    assert SupplierOrderRecord.objects.get(order_reference=order.escrow_reference).status == "open"
    assert Notification.objects.filter(recipient=staff).count() == 1
    assert sorted(OutboxMessage.objects.values_list("channel", flat=True)) == ["email", "webhook"]
    assert list(DomainEvent.objects.get(topic="order.placed").audience.order_by("pk")) == sorted(
        [order.buyer_organisation, supplier.organisation], key=lambda org: org.pk
    )
    # and it sent one outbox kick (not one per outbox row) and one metrics recompute
    assert sorted(celery_messages) == ["dispatch_outbox", "recompute_metrics"]

    # and the same key again replays the answer without placing a second order (the claim's
    # INSERT runs in autocommit here: its duplicate fails alone)
    again = _post(api, data, "fast-1")
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == body["id"]
    assert Order.objects.count() == 1


@pytest.mark.django_db
def test_an_unknown_supplier_is_still_a_400_on_supplier_id_and_writes_nothing(api_client_for):
    # given a buyer and no supplier 999999
    api = api_client_for(BuyerFactory())
    before = _nothing_written()
    # when they order from it (the supplier's lock is now its only read)
    response = _post(api, {"supplier_id": 999999, "terms": _terms()}, "unknown")
    # then it is refused on the field, and nothing changed
    assert response.status_code == 400
    assert response.json()["errors"]["supplier_id"] == ["No such supplier."]
    assert _nothing_written() == before


@pytest.mark.django_db
def test_a_supplier_without_trade_assurance_is_still_refused_and_nothing_is_written(
    api_client_for,
):
    # given a supplier that is not Trade Assured
    supplier = SupplierFactory()
    api = api_client_for(BuyerFactory())
    before = _nothing_written()
    # when a buyer orders from it
    response = _post(api, {"supplier_id": supplier.pk, "terms": _terms()}, "not-assured")
    # then it is refused as before, and nothing changed
    assert response.status_code == 403
    assert response.json()["code"] == "supplier_not_eligible"
    assert _nothing_written() == before


@pytest.mark.django_db
def test_an_order_over_the_limit_is_still_refused_and_nothing_is_written(api_client_for):
    # given a supplier with 1,000 USD of limit and an order of 1,400 USD
    supplier = trade_assured_supplier(ta_limit_usd=Decimal("1000.00"))
    api = api_client_for(BuyerFactory())
    before = _nothing_written()
    # when the buyer places it
    response = _post(api, {"supplier_id": supplier.pk, "terms": _terms()}, "over")
    # then the limit refuses it, and nothing changed
    assert response.status_code == 422
    assert response.json()["code"] == "trade_assurance_limit_exceeded"
    assert _nothing_written() == before


@pytest.mark.django_db
def test_invalid_terms_are_still_refused_before_the_supplier_is_locked(api_client_for):
    # given terms whose deadline is in the past
    supplier = trade_assured_supplier()
    api = api_client_for(BuyerFactory())
    before = _nothing_written()
    # when the buyer places them
    response = _post(
        api,
        {"supplier_id": supplier.pk, "terms": _terms(shipment_deadline="2020-01-01T00:00:00Z")},
        "past",
    )
    # then they are refused on the field, and nothing changed
    assert response.status_code == 400
    assert "shipment_deadline" in response.json()["errors"]
    assert _nothing_written() == before


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_orders_at_once_cannot_both_squeeze_under_the_limit(api_client_for):
    # given 2,000 USD of limit and two buyers each placing a 1,400 USD order at the same moment
    # (the record is now written without a second lock: the first lock must still serialise)
    supplier = trade_assured_supplier(ta_limit_usd=Decimal("2000.00"))
    clients = [api_client_for(BuyerFactory()) for _ in range(2)]
    barrier = threading.Barrier(2)
    statuses: list[int] = []
    codes: list[str] = []

    def place(n: int) -> None:
        try:
            barrier.wait(timeout=5)
            response = _post(clients[n], {"supplier_id": supplier.pk, "terms": _terms()}, f"r{n}")
            statuses.append(response.status_code)
            codes.append(response.json().get("code", ""))
        finally:
            connection.close()

    threads = [threading.Thread(target=place, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # then one is placed and the other refused for the limit: neither side errors
    assert sorted(statuses) == [201, 422]
    assert "trade_assurance_limit_exceeded" in codes
    assert Order.objects.count() == 1
    assert SupplierOrderRecord.objects.filter(supplier=supplier, status="open").count() == 1


@pytest.mark.django_db
def test_a_suspended_supplier_is_still_refused_and_nothing_is_written(api_client_for):
    # given a supplier whose Trade Assurance is suspended
    from suppliers.models import TradeAssuranceStatus

    supplier = trade_assured_supplier(ta_status=TradeAssuranceStatus.SUSPENDED)
    api = api_client_for(BuyerFactory())
    before = _nothing_written()
    # when a buyer orders from it through the one-statement path
    response = _post(api, {"supplier_id": supplier.pk, "terms": _terms()}, "suspended")
    # then it is refused as the supplier's lock always refused it, and nothing changed
    assert response.status_code == 403
    assert response.json()["code"] == "supplier_not_eligible"
    assert _nothing_written() == before


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_reused_idempotency_key_with_another_body_is_still_422_and_writes_nothing(
    api_client_for,
):
    # given an order placed with key "same"
    supplier = trade_assured_supplier()
    api = api_client_for(BuyerFactory())
    assert _post(api, {"supplier_id": supplier.pk, "terms": _terms()}, "same").status_code == 201
    before = _nothing_written()
    # when the same key comes with another body (another PO number)
    response = _post(
        api,
        {"supplier_id": supplier.pk, "terms": _terms(), "purchase_order_number": "PO-2"},
        "same",
    )
    # then it is refused and no second order (nor any of its rows) is written
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert _nothing_written() == before


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_several_line_order_written_in_one_statement_reads_back_whole(api_client_for):
    # given terms of three lines
    supplier = trade_assured_supplier()
    api = api_client_for(BuyerFactory())
    line = _terms()["items"][0]
    terms = _terms(
        items=[{**line, "description": f"Line {n}", "quantity": str(100 * n)} for n in (1, 2, 3)]
    )
    # when they are placed
    created = _post(api, {"supplier_id": supplier.pk, "terms": terms}, "three")
    # then version 1 is the order's contract with its three lines in order, as a read shows
    assert created.status_code == 201, created.json()
    order = Order.objects.get(pk=created.json()["id"])
    version = ContractVersion.objects.get(order=order)
    assert order.current_version_id == version.pk and version.number == 1
    assert list(version.items.values_list("position", "description")) == [
        (1, "Line 1"),
        (2, "Line 2"),
        (3, "Line 3"),
    ]
    assert order.summary == "Line 1 and 2 more"
    assert created.json() == api.get(f"{ORDERS}{order.pk}/").json()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_order_and_its_stored_answer_commit_together_or_not_at_all(api_client_for, monkeypatch):
    # given a buyer whose create fails after the order's rows are written (a bug in rendering)
    from orders import selectors
    from tradeassure.platform.models import IdempotencyRecord

    supplier = trade_assured_supplier()
    api = api_client_for(BuyerFactory())
    before = _nothing_written()

    def broken(**kwargs):
        raise RuntimeError("rendering failed")

    with monkeypatch.context() as patch:
        patch.setattr(selectors, "order_detail_placed", broken)
        # when the order is placed
        failed = _post(api, {"supplier_id": supplier.pk, "terms": _terms()}, "together")
    # then it answers 500, nothing of the order is kept and the key is free again
    assert failed.status_code == 500
    assert _nothing_written() == before
    assert not IdempotencyRecord.objects.filter(key="together").exists()
    # and a retry with the same key places it once, its answer stored with it
    again = _post(api, {"supplier_id": supplier.pk, "terms": _terms()}, "together")
    assert again.status_code == 201
    record = IdempotencyRecord.objects.get(key="together")
    assert record.state == IdempotencyRecord.State.COMPLETED
    assert record.response_status == 201
    assert Order.objects.count() == 1
