"""Every /api/v1/ endpoint x {anonymous, other buyer, other supplier, partner key of another
organisation, the party} → exactly the documented status, on lists and details.

Outsiders are asked first, so the party's request also proves their attempts changed nothing.
"""

from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal
from itertools import count
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from orders import services as order_services
from orders.models import OrderStatus
from tests.api.factories import NotificationFactory, WebhookEndpointFactory, make_event
from tests.api.test_orders_api import _terms
from tests.factories import BuyerFactory, InspectorFactory, PartnerFactory, SupplierStaffFactory
from tests.orders.factories import (
    PDF_BYTES,
    order_in,
    place_order,
    supplier_user_of,
    with_time_past_deadline,
)
from tests.suppliers.factories import ProductFactory
from tradeassure.core import clock
from tradeassure.platform.api.services import api_key_create
from tradeassure.platform.models import WebhookDelivery
from tradeassure.platform.outbox import outbox_dispatch_due

pytestmark = pytest.mark.django_db
S = OrderStatus
CALLERS = ["anonymous", "other_buyer", "other_supplier", "partner_other_org", "party"]
_keys = count()


@dataclass
class World:
    """What one row needs: the party who may act and the ids its path refers to."""

    party: Any
    ids: dict[str, Any] = field(default_factory=dict)
    check: Any = None  # a callable asserting nothing changed, run before the party acts
    # Notifications are a person's: an API key acts through its own service member, which is
    # never notified, so the party reads its own in a logged-in session.
    by_session: bool = False


def _client(user, *, session: bool = False) -> APIClient:
    client = APIClient()
    if user is not None and session:
        client.force_login(user)
    elif user is not None:
        _, raw_key = api_key_create(actor=user, name="matrix")
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


def _unchanged(order):
    status = order.status

    def check():
        order.refresh_from_db()
        assert order.status == status

    return check


# --- worlds ----------------------------------------------------------------------------------------
def w_order(status, party="buyer", **terms):
    def build():
        order = order_in(status, **terms)
        user = order.buyer if party == "buyer" else supplier_user_of(order)
        return World(party=user, ids={"order": order.pk}, check=_unchanged(order))

    return build


def w_late(party="buyer"):
    def build():
        order = with_time_past_deadline(order_in(S.IN_PRODUCTION))
        return World(party=order.buyer, ids={"order": order.pk}, check=_unchanged(order))

    return build


def w_proposal(party):
    def build():
        order = place_order()
        supplier_user = supplier_user_of(order)
        order_services.order_propose_changes(
            order=order,
            actor=supplier_user,
            terms=replace(
                order_services.contract_terms_of(order.current_version),
                packaging="Changed packaging",
            ),
        )
        user = order.buyer if party == "buyer" else supplier_user
        return World(party=user, ids={"order": order.pk}, check=_unchanged(order))

    return build


def w_shipped_document():
    def build():
        order = order_in(S.SHIPPED)
        return World(
            party=order.buyer,
            ids={"order": order.pk, "document": order.shipment.documents.first().pk},
        )

    return build


def w_payment():
    def build():
        order = order_in(S.AWAITING_PAYMENT)
        payment = order_services.order_payment_start(
            order=order, actor=order.buyer, method="bank_transfer"
        )
        return World(party=order.buyer, ids={"payment": payment.public_id})

    return build


def w_card_payment():
    def build():
        order = order_in(S.AWAITING_PAYMENT)
        payment = order_services.order_payment_start(order=order, actor=order.buyer, method="card")
        return World(party=order.buyer, ids={"payment": payment.public_id})

    return build


def w_event():
    def build():
        buyer = BuyerFactory()
        event = make_event(audience=[buyer.organisation])
        return World(party=buyer, ids={"event": event.pk})

    return build


def w_notification():
    def build():
        notification = NotificationFactory()
        return World(
            party=notification.recipient, ids={"notification": notification.pk}, by_session=True
        )

    return build


def w_endpoint():
    def build():
        buyer = BuyerFactory()
        endpoint = WebhookEndpointFactory(organisation=buyer.organisation)
        return World(party=buyer, ids={"endpoint": endpoint.pk})

    return build


def w_delivery():
    def build():
        buyer = BuyerFactory()
        WebhookEndpointFactory(organisation=buyer.organisation)
        make_event(audience=[buyer.organisation])
        outbox_dispatch_due()
        return World(party=buyer, ids={"delivery": WebhookDelivery.objects.get().pk})

    return build


def w_buyer():
    def build():
        return World(party=BuyerFactory())

    return build


def w_public_product():
    def build():
        product = ProductFactory()
        return World(
            party=BuyerFactory(), ids={"supplier": product.supplier_id, "product": product.pk}
        )

    return build


def w_dispute(party="buyer", counter=False, escalatable=False, inspection=False):
    def build():
        from disputes import services as dispute_services
        from disputes.models import Dispute
        from tests.disputes.factories import open_dispute, parties_for, under_review
        from tests.factories import MediatorFactory

        parties = parties_for("delivered")
        ids = {"order": parties.order.pk}
        if inspection:
            mediator = MediatorFactory()
            dispute = under_review(parties, mediator)
            inspection_row = dispute_services.dispute_order_inspection(
                dispute=dispute,
                actor=mediator,
                organisation=InspectorFactory().organisation,
                instructions="Check 20 units",
                fee_amount=Decimal("150.00"),
            )
            ids["inspection"] = inspection_row.pk
        else:
            dispute = open_dispute(parties)
        if counter:
            ids["proposal"] = dispute_services.dispute_propose(
                dispute=dispute,
                actor=parties.supplier_user,
                terms=dispute_services.OutcomeTerms(
                    remedy="partial_refund", refund_amount=Decimal("100.00")
                ),
            ).pk
        if escalatable:
            Dispute.objects.filter(pk=dispute.pk).update(
                buyer_may_escalate_at=clock.now() - timedelta(seconds=1)
            )
        ids["dispute"] = dispute.pk
        ids["evidence"] = dispute.evidence.first().pk if dispute.evidence.exists() else None
        user = parties.buyer if party == "buyer" else parties.supplier_user
        dispute.refresh_from_db()
        status = dispute.status

        def check():
            dispute.refresh_from_db()
            assert dispute.status == status

        return World(party=user, ids=ids, check=check)

    return build


def w_delivered():
    def build():
        order = order_in(S.DELIVERED)
        return World(party=order.buyer, ids={"order": order.pk}, check=_unchanged(order))

    return build


def _documents():
    return {
        kind: SimpleUploadedFile(f"{kind}.pdf", PDF_BYTES, "application/pdf")
        for kind in ("commercial_invoice", "bill_of_lading", "packing_list")
    }


# --- the matrix --------------------------------------------------------------------------------------
# (name, method, path, world, body, party status, outsider status, anonymous status, list key)
# `list key`: for list endpoints, the id that must appear for the party and for nobody else.
def w_preship(party="buyer", paid=False, reported=False, booked=True):
    """A paid order in production with a pre-shipment inspection booked (paid, reported)."""

    def build():
        from orders.inspection.models import PreshipmentInspection
        from tests.orders.factories import book_inspection, pay_inspection, report_inspection

        order = order_in(S.IN_PRODUCTION)
        inspector = InspectorFactory()
        ids = {"order": order.pk, "company": inspector.organisation_id}
        if not booked:

            def nothing_booked():
                assert not PreshipmentInspection.objects.filter(order=order).exists()

            return World(party=order.buyer, ids=ids, check=nothing_booked)
        inspection, _ = book_inspection(order, inspector=inspector)
        if paid or reported:
            pay_inspection(inspection)
        if reported:
            inspection = report_inspection(inspection, inspector, "conforms")
            ids["file"] = inspection.files.get().pk
        ids["inspection"] = inspection.pk
        status = inspection.status
        user = {
            "buyer": order.buyer,
            "supplier": supplier_user_of(order),
            "inspector": inspector,
        }[party]

        def unchanged():
            inspection.refresh_from_db()
            assert inspection.status == status

        return World(party=user, ids=ids, check=unchanged)

    return build


PRIVATE = 404
# fmt: off
ROWS = [
    ("orders list", "get", "/api/v1/orders/", w_order(S.PENDING_CONFIRMATION), None, 200, 200, 401, "order"),
    ("order detail", "get", "/api/v1/orders/{order}/", w_order(S.PENDING_CONFIRMATION), None, 200, PRIVATE, 401, None),
    ("order detail (supplier)", "get", "/api/v1/orders/{order}/", w_order(S.PENDING_CONFIRMATION, "supplier"), None, 200, PRIVATE, 401, None),
    ("order create", "post", "/api/v1/orders/", w_buyer(), "create", 201, 403, 401, None),
    ("confirm", "post", "/api/v1/orders/{order}/confirm/", w_order(S.PENDING_CONFIRMATION, "supplier"), {}, 200, PRIVATE, 401, None),
    ("cancel", "post", "/api/v1/orders/{order}/cancel/", w_order(S.PENDING_CONFIRMATION), {"reason": "x"}, 200, PRIVATE, 401, None),
    ("propose changes", "post", "/api/v1/orders/{order}/propose-changes/", w_order(S.PENDING_CONFIRMATION, "supplier"), "propose", 201, PRIVATE, 401, None),
    ("accept changes", "post", "/api/v1/orders/{order}/accept-changes/", w_proposal("buyer"), {}, 200, PRIVATE, 401, None),
    ("decline changes", "post", "/api/v1/orders/{order}/decline-changes/", w_proposal("buyer"), {}, 200, PRIVATE, 401, None),
    ("withdraw changes", "post", "/api/v1/orders/{order}/withdraw-changes/", w_proposal("supplier"), {}, 200, PRIVATE, 401, None),
    ("pay", "post", "/api/v1/orders/{order}/pay/", w_order(S.AWAITING_PAYMENT), {"method": "card"}, 201, PRIVATE, 401, None),
    ("request balance", "post", "/api/v1/orders/{order}/request-balance/", w_order(S.IN_PRODUCTION, "supplier"), {}, 200, PRIVATE, 401, None),
    ("mark ready", "post", "/api/v1/orders/{order}/mark-ready/", w_order(S.IN_PRODUCTION, "supplier", initial_payment_amount=Decimal("1400.00")), {}, 200, PRIVATE, 401, None),
    ("ship", "post", "/api/v1/orders/{order}/ship/", w_order(S.READY_TO_SHIP, "supplier"), "ship", 200, PRIVATE, 401, None),
    ("extend shipment deadline", "post", "/api/v1/orders/{order}/extend-shipment-deadline/", w_late(), "extend", 200, PRIVATE, 401, None),
    ("cancel late", "post", "/api/v1/orders/{order}/cancel-late/", w_late(), {"reason": "late"}, 200, PRIVATE, 401, None),
    ("confirm receipt", "post", "/api/v1/orders/{order}/confirm-receipt/", w_order(S.SHIPPED), {}, 200, PRIVATE, 401, None),
    ("extend receipt window", "post", "/api/v1/orders/{order}/extend-receipt-window/", w_order(S.SHIPPED), {}, 200, PRIVATE, 401, None),
    ("accept goods", "post", "/api/v1/orders/{order}/accept-goods/", w_order(S.DELIVERED), {}, 200, PRIVATE, 401, None),
    ("rate", "post", "/api/v1/orders/{order}/rate/", w_order(S.COMPLETED), {"score": 4}, 201, PRIVATE, 401, None),
    ("shipping document", "get", "/api/v1/orders/{order}/documents/{document}/", w_shipped_document(), None, 200, PRIVATE, 401, None),
    ("payments list", "get", "/api/v1/payments/", w_payment(), None, 200, 200, 401, "payment"),
    ("payment detail", "get", "/api/v1/payments/{payment}/", w_payment(), None, 200, PRIVATE, 401, None),
    ("sandbox card", "post", "/api/v1/payments/{payment}/sandbox-card/", w_card_payment(), {"card_number": "4242424242424242"}, 202, PRIVATE, 401, None),
    ("sandbox transfer", "post", "/api/v1/payments/{payment}/sandbox-transfer/", w_payment(), {"amount": "400.00", "currency": "USD"}, 202, PRIVATE, 401, None),
    ("events list", "get", "/api/v1/events/", w_event(), None, 200, 200, 401, "event"),
    ("event detail", "get", "/api/v1/events/{event}/", w_event(), None, 200, PRIVATE, 401, None),
    ("notifications list", "get", "/api/v1/notifications/", w_notification(), None, 200, 200, 401, "notification"),
    ("notification detail", "get", "/api/v1/notifications/{notification}/", w_notification(), None, 200, PRIVATE, 401, None),
    ("notification read", "post", "/api/v1/notifications/{notification}/read/", w_notification(), {}, 200, PRIVATE, 401, None),
    ("notifications read all", "post", "/api/v1/notifications/read-all/", w_notification(), {}, 200, 200, 401, None),
    ("webhook endpoints list", "get", "/api/v1/webhook-endpoints/", w_endpoint(), None, 200, 200, 401, "endpoint"),
    ("webhook endpoint create", "post", "/api/v1/webhook-endpoints/", w_buyer(), {"url": "https://hooks.example.com/x"}, 201, 201, 401, None),
    ("webhook endpoint detail", "get", "/api/v1/webhook-endpoints/{endpoint}/", w_endpoint(), None, 200, PRIVATE, 401, None),
    ("webhook endpoint update", "patch", "/api/v1/webhook-endpoints/{endpoint}/", w_endpoint(), {"description": "x"}, 200, PRIVATE, 401, None),
    ("webhook endpoint rotate", "post", "/api/v1/webhook-endpoints/{endpoint}/rotate-secret/", w_endpoint(), {}, 200, PRIVATE, 401, None),
    ("webhook endpoint test", "post", "/api/v1/webhook-endpoints/{endpoint}/test/", w_endpoint(), {}, 202, PRIVATE, 401, None),
    ("webhook endpoint delete", "delete", "/api/v1/webhook-endpoints/{endpoint}/", w_endpoint(), None, 204, PRIVATE, 401, None),
    ("webhook deliveries list", "get", "/api/v1/webhook-deliveries/", w_delivery(), None, 200, 200, 401, "delivery"),
    ("webhook delivery detail", "get", "/api/v1/webhook-deliveries/{delivery}/", w_delivery(), None, 200, PRIVATE, 401, None),
    ("webhook redeliver", "post", "/api/v1/webhook-deliveries/{delivery}/redeliver/", w_delivery(), {}, 202, PRIVATE, 401, None),
    ("suppliers list", "get", "/api/v1/suppliers/", w_public_product(), None, 200, 200, 200, None),
    ("supplier detail", "get", "/api/v1/suppliers/{supplier}/", w_public_product(), None, 200, 200, 200, None),
    ("products list", "get", "/api/v1/products/", w_public_product(), None, 200, 200, 200, None),
    ("product detail", "get", "/api/v1/products/{product}/", w_public_product(), None, 200, 200, 200, None),
    ("categories list", "get", "/api/v1/categories/", w_public_product(), None, 200, 200, 200, None),
    ("disputes list", "get", "/api/v1/disputes/", w_dispute(), None, 200, 200, 401, "dispute"),
    ("dispute detail", "get", "/api/v1/disputes/{dispute}/", w_dispute(), None, 200, PRIVATE, 401, None),
    ("dispute detail (supplier)", "get", "/api/v1/disputes/{dispute}/", w_dispute("supplier"), None, 200, PRIVATE, 401, None),
    # Opening a dispute on someone else's order: 400 (order_id names no order of yours).
    ("dispute open", "post", "/api/v1/disputes/", w_delivered(), "dispute", 201, 400, 401, None),
    ("dispute message", "post", "/api/v1/disputes/{dispute}/messages/", w_dispute(), {"body": "Hello"}, 201, PRIVATE, 401, None),
    ("dispute propose", "post", "/api/v1/disputes/{dispute}/proposals/", w_dispute("supplier"), {"remedy": "partial_refund", "refund_amount": "50.00"}, 201, PRIVATE, 401, None),
    ("dispute accept proposal", "post", "/api/v1/disputes/{dispute}/accept-proposal/", w_dispute("buyer", counter=True), "accept", 200, PRIVATE, 401, None),
    ("dispute reject proposal", "post", "/api/v1/disputes/{dispute}/reject-proposal/", w_dispute("supplier"), {"message": "Not our fault"}, 200, PRIVATE, 401, None),
    ("dispute escalate", "post", "/api/v1/disputes/{dispute}/escalate/", w_dispute(escalatable=True), {}, 200, PRIVATE, 401, None),
    ("dispute withdraw", "post", "/api/v1/disputes/{dispute}/withdraw/", w_dispute(), {}, 200, PRIVATE, 401, None),
    ("dispute evidence upload", "post", "/api/v1/disputes/{dispute}/evidence/", w_dispute(), "evidence", 201, PRIVATE, 401, None),
    ("dispute evidence download", "get", "/api/v1/disputes/{dispute}/evidence/{evidence}/", w_dispute("supplier"), None, 200, PRIVATE, 401, None),
    ("dispute pay inspection fee", "post", "/api/v1/disputes/{dispute}/pay-inspection-fee/", w_dispute(inspection=True), "inspection", 201, PRIVATE, 401, None),
    ("preshipment inspections list", "get", "/api/v1/preshipment-inspections/", w_preship(), None, 200, 200, 401, "inspection"),
    ("preshipment inspections list (inspector)", "get", "/api/v1/preshipment-inspections/", w_preship("inspector", paid=True), None, 200, 200, 401, "inspection"),
    ("preshipment inspection detail", "get", "/api/v1/preshipment-inspections/{inspection}/", w_preship("supplier"), None, 200, PRIVATE, 401, None),
    # Booking on someone else's order: 404 (the order is not theirs to see).
    ("preshipment inspection book", "post", "/api/v1/preshipment-inspections/", w_preship(booked=False), "preship_book", 201, PRIVATE, 401, None),
    ("preshipment inspection pay fee", "post", "/api/v1/preshipment-inspections/{inspection}/pay-fee/", w_preship(), {"method": "card"}, 201, PRIVATE, 401, None),
    ("preshipment inspection cancel", "post", "/api/v1/preshipment-inspections/{inspection}/cancel/", w_preship(), {}, 200, PRIVATE, 401, None),
    ("preshipment inspection dates", "post", "/api/v1/preshipment-inspections/{inspection}/propose-dates/", w_preship("supplier"), "preship_dates", 200, PRIVATE, 401, None),
    ("preshipment inspection report", "post", "/api/v1/preshipment-inspections/{inspection}/report/", w_preship("inspector", paid=True), "preship_report", 200, PRIVATE, 401, None),
    ("preshipment inspection file", "get", "/api/v1/preshipment-inspections/{inspection}/files/{file}/", w_preship(reported=True), None, 200, PRIVATE, 401, None),
]
# fmt: on


def _body(kind, world: World):
    if kind == "create":
        from tests.orders.factories import trade_assured_supplier

        return {"supplier_id": trade_assured_supplier().pk, "terms": _terms()}, "json"
    if kind == "propose":
        return {"terms": _terms(packaging="Other packaging")}, "json"
    if kind == "ship":
        return {
            "carrier": "Maersk",
            "tracking_number": "MSKU1",
            "shipped_on": clock.now().date().isoformat(),
            **_documents(),
        }, "multipart"
    if kind == "dispute":
        from tests.disputes.factories import pdf

        return {
            "order_id": world.ids["order"],
            "type": "quality",
            "description": "Cracked housings",
            "remedy": "full_refund",
            "files": [pdf()],
        }, "multipart"
    if kind == "accept":
        return {"proposal_id": world.ids["proposal"]}, "json"
    if kind == "evidence":
        from tests.disputes.factories import pdf

        return {"files": [pdf()], "description": "photo"}, "multipart"
    if kind == "inspection":
        return {"inspection_id": world.ids["inspection"], "method": "card"}, "json"
    if kind == "preship_book":
        return {"order_id": world.ids["order"], "organisation_id": world.ids["company"]}, "json"
    if kind == "preship_dates":
        return {"dates": [(clock.now() + timedelta(days=3)).date().isoformat()]}, "json"
    if kind == "preship_report":
        return {
            "verdict": "conforms",
            "findings": "All fine",
            "files": [SimpleUploadedFile("report.pdf", PDF_BYTES, "application/pdf")],
        }, "multipart"
    if kind == "extend":
        return {"new_deadline": (clock.now() + timedelta(days=20)).isoformat()}, "json"
    return kind, "json"


def _call(client, method, url, body, fmt):
    if method == "get":
        return client.get(url)
    if method == "delete":
        return client.delete(url)
    if method == "patch":
        return client.patch(url, body, format=fmt)
    return client.post(url, body, format=fmt, HTTP_IDEMPOTENCY_KEY=f"matrix-{next(_keys)}")


@pytest.mark.parametrize(
    (
        "name",
        "method",
        "path",
        "build",
        "body",
        "party_status",
        "outsider_status",
        "anon_status",
        "list_key",
    ),
    ROWS,
    ids=[row[0] for row in ROWS],
)
def test_authorization_matrix(
    name,
    method,
    path,
    build,
    body,
    party_status,
    outsider_status,
    anon_status,
    list_key,
    django_capture_on_commit_callbacks,
):
    # given the resource and the five callers
    world = build()
    url = path.format(**world.ids)
    callers = {
        "anonymous": None,
        "other_buyer": BuyerFactory(),
        "other_supplier": SupplierStaffFactory(),
        "partner_other_org": PartnerFactory(),
        "party": world.party,
    }
    for caller in CALLERS:
        expected = {"anonymous": anon_status, "party": party_status}.get(caller, outsider_status)
        if name == "order create" and caller == "other_buyer":
            expected = party_status  # any buyer may place an order: it is their own
        payload, fmt = _body(body, world) if body is not None else (None, "json")
        if caller == "party" and world.check is not None:
            world.check()  # the outsiders' attempts changed nothing
        # when the caller makes the request
        with django_capture_on_commit_callbacks(execute=False):
            session = world.by_session and caller == "party"
            response = _call(_client(callers[caller], session=session), method, url, payload, fmt)
        # then exactly the documented status
        assert response.status_code == expected, (
            f"{name}: {caller} got {response.status_code}, expected {expected}: "
            f"{getattr(response, 'content', b'')[:300]!r}"
        )
        if response.status_code >= 400:
            assert response["Content-Type"] == "application/problem+json"
        if list_key is not None and response.status_code == 200:
            ids = [str(row["id"]) for row in response.json()["results"]]
            if caller == "party":
                assert str(world.ids[list_key]) in ids
            else:
                assert str(world.ids[list_key]) not in ids
