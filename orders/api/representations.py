"""The order list and detail as plain dicts, for the hot reads (`GET /orders/`, `/orders/{id}/`).

DRF's ModelSerializer rebuilds its fields per request and walks every field through several
layers of calls per row; these functions write the same JSON directly. The serializers in
`orders.api.serializers` stay the contract (they give the OpenAPI schema and every other
answer), and `tests/api/test_order_reads_fast_path.py` checks that both give identical JSON for
orders in every state.
"""

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from orders.models import ContractVersion, OrderEvent, Shipment
from orders.selectors import OrderDetail
from payments.references import escrow_reference_for_order
from tradeassure.core.money import AMOUNT_DECIMAL_PLACES

_AMOUNT = Decimal(1).scaleb(-AMOUNT_DECIMAL_PLACES)
_QUANTITY = Decimal("0.001")  # ContractLineItem.quantity has 3 decimal places

# The order's own fields, in OrderSerializer's order (the list's columns).
ORDER_MONEY = ("subtotal", "shipping_fee", "total", "initial_payment_amount", "balance_amount")
ORDER_TIMES = (
    "placed_at",
    "confirmed_at",
    "initial_paid_at",
    "balance_paid_at",
    "shipped_at",
    "delivered_at",
    "completed_at",
    "cancelled_at",
    "refunded_at",
    "confirmation_due_at",
    "payment_due_at",
    "shipment_due_at",
    "receipt_due_at",
    "completion_due_at",
    "updated_at",
)
# What the list reads with `.values()`: no model instances, no related objects.
ORDER_LIST_VALUES = (
    "id",
    "status",
    "supplier_id",
    "supplier__legal_name",
    "buyer_organisation_id",
    "buyer_organisation__name",
    "purchase_order_number",
    "summary",
    "currency",
    "coverage",
    *ORDER_MONEY,
    "shipment_deadline",
    "is_late",
    "proposal_pending_from",
    *ORDER_TIMES,
)


def _amount(value: Decimal) -> str:
    return f"{value.quantize(_AMOUNT):f}"


def _time(value: datetime | None) -> str | None:
    """As DRF's DateTimeField writes it: ISO 8601 in the current time zone, UTC as `Z`."""
    if value is None:
        return None
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _date(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def order_row(row: dict[str, Any]) -> dict[str, Any]:
    """One order of the list, from its `ORDER_LIST_VALUES` row (OrderSerializer's JSON)."""
    pk = row["id"]
    data: dict[str, Any] = {
        "id": pk,
        "reference": f"TA-{pk:06d}",
        "escrow_reference": escrow_reference_for_order(pk),
        "status": str(row["status"]),
        "supplier": {"id": row["supplier_id"], "name": row["supplier__legal_name"]},
        "buyer_organisation": {
            "id": row["buyer_organisation_id"],
            "name": row["buyer_organisation__name"],
        },
        "purchase_order_number": row["purchase_order_number"],
        "summary": row["summary"],
        "currency": str(row["currency"]),
        "coverage": str(row["coverage"]),
    }
    for name in ORDER_MONEY:
        data[name] = _amount(row[name])
    data["shipment_deadline"] = _time(row["shipment_deadline"])
    data["is_late"] = row["is_late"]
    data["proposal_pending_from"] = row["proposal_pending_from"]
    for name in ORDER_TIMES:
        data[name] = _time(row[name])
    return data


def _version(version: ContractVersion) -> dict[str, Any]:
    return {
        "number": version.number,
        "state": str(version.state),
        "proposed_by_party": str(version.proposed_by_party),
        "proposal_note": version.proposal_note,
        "created_at": _time(version.created_at),
        "decided_at": _time(version.decided_at),
        "currency": str(version.currency),
        "coverage": str(version.coverage),
        "packaging": version.packaging,
        "customisation": version.customisation,
        "shipment_deadline": _time(version.shipment_deadline),
        "incoterm": str(version.incoterm),
        "destination": version.destination,
        "shipping_method": str(version.shipping_method),
        "shipping_fee": _amount(version.shipping_fee),
        "subtotal": _amount(version.subtotal),
        "total": _amount(version.total),
        "initial_payment_amount": _amount(version.initial_payment_amount),
        "balance_amount": _amount(version.balance_amount),
        "items": [
            {
                "position": item.position,
                "product_id": item.product_id,
                "description": item.description,
                "specifications": item.specifications,
                "quality_requirements": item.quality_requirements,
                "quantity": f"{item.quantity.quantize(_QUANTITY):f}",
                "unit": item.unit,
                "unit_price": _amount(item.unit_price),
                "line_total": _amount(item.line_total),
            }
            for item in version.items.all()  # loaded with the version: no query
        ],
    }


def _event(event: OrderEvent) -> dict[str, Any]:
    return {
        "id": event.pk,
        "action": event.action,
        "actor_party": str(event.actor_party),
        "from_status": event.from_status,
        "to_status": event.to_status,
        "note": event.note,
        "data": event.data,
        "created_at": _time(event.created_at),
    }


def _shipment(shipment: Shipment) -> dict[str, Any]:
    order_id = shipment.order_id
    return {
        "carrier": shipment.carrier,
        "tracking_number": shipment.tracking_number,
        "shipped_on": _date(shipment.shipped_on),
        "note": shipment.note,
        "recorded_at": _time(shipment.recorded_at),
        "documents": [
            {
                "id": document.pk,
                "kind": str(document.kind),
                "original_name": document.original_name,
                "content_type": document.content_type,
                "size": document.size,
                "download_url": f"/api/v1/orders/{order_id}/documents/{document.pk}/",
            }
            for document in shipment.documents.all()  # prefetched
        ],
    }


def order_detail_data(detail: OrderDetail) -> dict[str, Any]:
    """One order in full (OrderDetailSerializer's JSON), from an `OrderDetail` with its rows."""
    order = detail.order
    data = order_row(
        {
            **{name: getattr(order, name) for name in ORDER_LIST_VALUES if "__" not in name},
            "supplier__legal_name": order.supplier.legal_name,
            "buyer_organisation__name": order.buyer_organisation.name,
        }
    )
    money = detail.money
    rating = detail.rating
    data.update(
        {
            "your_party": str(detail.your_party) if detail.your_party is not None else None,
            "contract": _version(detail.contract) if detail.contract is not None else None,
            "versions": [_version(version) for version in detail.versions],
            "timeline": [_event(event) for event in detail.timeline],
            "shipment": _shipment(detail.shipment) if detail.shipment is not None else None,
            "rating": (
                {
                    "score": rating.score,
                    "comment": rating.comment,
                    "created_at": _time(rating.created_at),
                }
                if rating is not None
                else None
            ),
            "money": None
            if money is None
            else {
                "currency": money.currency,
                "frozen": money.frozen,
                "captured": _amount(money.captured),
                "held": _amount(money.held),
                "released": _amount(money.released),
                "fees": _amount(money.fees),
                "refunded": _amount(money.refunded),
                "supplier_net": _amount(money.supplier_net),
            },
            "payment_due": (
                {
                    "purpose": detail.payment_due.purpose,
                    "amount": _amount(detail.payment_due.amount),
                }
                if detail.payment_due is not None
                else None
            ),
            "actions": [{"action": row.action, "label": str(row.label)} for row in detail.actions],
        }
    )
    return data
