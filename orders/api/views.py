"""Orders: create, list, retrieve (with ETag), every transition as `POST /orders/{id}/<action>/`."""

import hashlib

import django_filters
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from orders import selectors, services
from orders.api.representations import ORDER_LIST_VALUES, order_detail_data, order_row
from orders.api.serializers import (
    ContractVersionSerializer,
    ExtendShipmentDeadlineInputSerializer,
    NoteInputSerializer,
    OrderCreateInputSerializer,
    OrderDetailSerializer,
    OrderSerializer,
    PayInputSerializer,
    ProposeChangesInputSerializer,
    RateInputSerializer,
    RatingSerializer,
    ReasonInputSerializer,
    ShipInputSerializer,
    contract_terms_from,
)
from orders.error_codes import OrderErrorCode
from orders.models import Coverage, Order, OrderStatus
from payments.api.serializers import PaymentSerializer
from tradeassure.core.errors import NotFound
from tradeassure.platform.api import filters as api_filters
from tradeassure.platform.api.idempotency import idempotent_transaction
from tradeassure.platform.api.parsers import MultiPartParser
from tradeassure.platform.api.viewsets import ApiViewSet

_CREATE_EXAMPLE = OpenApiExample(
    "A protected order for 500 USB-C chargers",
    request_only=True,
    value={
        "supplier_id": 1,
        "purchase_order_number": "PO-2026-0042",
        "note": "Please confirm within the week.",
        "terms": {
            "currency": "USD",
            "coverage": "post_delivery",
            "items": [
                {
                    "product_id": None,
                    "description": "USB-C charger 65 W, EU plug",
                    "quality_requirements": "CE marked; output 65 W ±5 %; drop test 1 m passes",
                    "quantity": "500",
                    "unit": "pcs",
                    "unit_price": "7.80",
                }
            ],
            "shipment_deadline": "2027-01-15T00:00:00Z",
            "incoterm": "FOB",
            "destination": "Port of Felixstowe, GB",
            "shipping_method": "sea",
            "shipping_fee": "120.00",
            "initial_payment_amount": "1200.00",
        },
    },
)


class OrderFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=OrderStatus.choices)
    coverage = django_filters.ChoiceFilter(choices=Coverage.choices)
    currency = django_filters.CharFilter()
    supplier = api_filters.IntegerFilter(field_name="supplier_id")
    buyer = api_filters.IntegerFilter(
        field_name="buyer_organisation_id", help_text="The buyer organisation's id."
    )
    placed_after = api_filters.IsoDateTimeFilter(field_name="placed_at", lookup_expr="gte")
    placed_before = api_filters.IsoDateTimeFilter(field_name="placed_at", lookup_expr="lt")
    updated_after = api_filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")
    is_late = api_filters.BooleanFilter()
    q = django_filters.CharFilter(
        method="filter_search", help_text="Reference (TA-000042), PO number, party or goods."
    )

    class Meta:
        model = Order
        fields = ["status", "coverage", "currency", "supplier", "buyer", "is_late"]

    def filter_search(self, queryset, name, value):
        matching = selectors.order_list(user=self.request.user, party="", search=value)
        return queryset.filter(pk__in=matching.values("pk"))


def _transition(summary: str, request=NoteInputSerializer, description: str = ""):
    """Schema for a transition action: it answers with the order as it now is."""
    return extend_schema(
        summary=summary,
        description=description
        or "Allowed only in the statuses and for the party the lifecycle map says; otherwise "
        "409 `invalid_transition` (or 403 for the wrong party).",
        request=request,
        responses={200: OrderDetailSerializer},
    )


@extend_schema_view(
    list=extend_schema(
        summary="Orders you are a party to",
        description="Buyers see their organisation's orders; supplier staff their company's.",
    ),
    retrieve=extend_schema(
        summary="One order, in full",
        description="Sends an `ETag`; send it back in `If-None-Match` to get 304 when unchanged.",
        parameters=[
            OpenApiParameter(
                "If-None-Match", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False
            )
        ],
        responses={
            200: OrderDetailSerializer,
            304: OpenApiResponse(description="Not modified since the ETag you sent."),
        },
    ),
    create=extend_schema(
        summary="Place a protected order (buyers)",
        request=OrderCreateInputSerializer,
        responses={201: OrderDetailSerializer},
        examples=[_CREATE_EXAMPLE],
    ),
)
class OrderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    queryset = Order.objects.none()
    serializer_class = OrderSerializer
    filterset_class = OrderFilter
    ordering_fields = ["placed_at", "updated_at", "total", "id"]
    ordering = ["-placed_at", "-id"]

    def get_queryset(self):
        return selectors.orders_visible_to(self.request.user)

    # --- reads -------------------------------------------------------------------------------
    def _order_id(self) -> int:
        try:
            return int(self.kwargs["pk"])
        except (TypeError, ValueError) as exc:
            raise NotFound("No such order.", code=OrderErrorCode.ORDER_NOT_FOUND) from exc

    def _visible_order(self) -> Order:
        return selectors.order_for_user(user=self.request.user, pk=self._order_id())

    def _detail(self, order_id: int | None = None) -> dict:
        detail = selectors.order_detail_for_user(
            user=self.request.user, pk=order_id if order_id is not None else self._order_id()
        )
        return order_detail_data(detail)  # OrderDetailSerializer's JSON, written directly

    def list(self, request, *args, **kwargs):
        # Rows as `.values()` dicts written straight to JSON (OrderSerializer's shape, no model
        # instances); the cursor reads its position from the dicts.
        queryset = self.filter_queryset(self.get_queryset()).values(*ORDER_LIST_VALUES)
        page = self.paginate_queryset(queryset)
        assert page is not None  # the API always paginates (DEFAULT_PAGINATION_CLASS)
        return self.get_paginated_response([order_row(row) for row in page])

    def retrieve(self, request, *args, **kwargs):
        detail = selectors.order_detail_for_user(user=request.user, pk=self._order_id())
        # Rendered once: the ETag is the hash of the very bytes sent.
        content = JSONRenderer().render(order_detail_data(detail))
        etag = '"' + hashlib.sha256(content).hexdigest()[:32] + '"'
        if etag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]:
            response = HttpResponse(status=status.HTTP_304_NOT_MODIFIED)
        else:
            response = HttpResponse(content, content_type="application/json")
        response["ETag"] = etag
        return response

    def _respond(self, order: Order, code: int = status.HTTP_200_OK) -> Response:
        return Response(self._detail(order.pk), status=code)

    @staticmethod
    def _input(serializer_class, request) -> dict:
        serializer = serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    # --- create ------------------------------------------------------------------------------
    def create(self, request, *args, **kwargs):
        data = self._input(OrderCreateInputSerializer, request)

        def place() -> Response:
            placed = services.order_place_rows_in_transaction(
                buyer=request.user,
                supplier=data["supplier_id"],  # no such supplier: 400 on supplier_id, by its lock
                terms=contract_terms_from(data["terms"]),
                purchase_order_number=data["purchase_order_number"],
                note=data["note"],
            )
            # Rendered from what was just written, not read back.
            detail = selectors.order_detail_placed(placed=placed, user=request.user)
            return Response(order_detail_data(detail), status=status.HTTP_201_CREATED)

        # The order and the answer its Idempotency-Key replays commit together.
        return idempotent_transaction(self, request, place)

    # --- transitions -------------------------------------------------------------------------
    @_transition("Supplier confirms the order as it stands")
    @action(detail=True, methods=["post"])
    def confirm(self, request, pk=None):
        note = self._input(NoteInputSerializer, request)["note"]
        return self._respond(
            services.order_confirm(order=self._visible_order(), actor=request.user, note=note)
        )

    @_transition("Cancel before any money is held", request=ReasonInputSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        reason = self._input(ReasonInputSerializer, request)["reason"]
        return self._respond(
            services.order_cancel(order=self._visible_order(), actor=request.user, reason=reason)
        )

    @extend_schema(
        summary="Propose a contract change (a new version the other party accepts or declines)",
        request=ProposeChangesInputSerializer,
        responses={201: ContractVersionSerializer},
    )
    @action(detail=True, methods=["post"], url_path="propose-changes")
    def propose_changes(self, request, pk=None):
        data = self._input(ProposeChangesInputSerializer, request)
        version = services.order_propose_changes(
            order=self._visible_order(),
            actor=request.user,
            terms=contract_terms_from(data["terms"]),
            note=data["note"],
        )
        return Response(ContractVersionSerializer(version).data, status=status.HTTP_201_CREATED)

    @_transition("Accept the other party's proposed version")
    @action(detail=True, methods=["post"], url_path="accept-changes")
    def accept_changes(self, request, pk=None):
        note = self._input(NoteInputSerializer, request)["note"]
        return self._respond(
            services.order_accept_changes(
                order=self._visible_order(), actor=request.user, note=note
            )
        )

    @_transition("Decline the other party's proposed version")
    @action(detail=True, methods=["post"], url_path="decline-changes")
    def decline_changes(self, request, pk=None):
        note = self._input(NoteInputSerializer, request)["note"]
        return self._respond(
            services.order_decline_changes(
                order=self._visible_order(), actor=request.user, note=note
            )
        )

    @_transition("Withdraw your own proposal")
    @action(detail=True, methods=["post"], url_path="withdraw-changes")
    def withdraw_changes(self, request, pk=None):
        note = self._input(NoteInputSerializer, request)["note"]
        return self._respond(
            services.order_withdraw_changes(
                order=self._visible_order(), actor=request.user, note=note
            )
        )

    @extend_schema(
        summary="Start the payment due now (buyers)",
        description=(
            "Starts the initial or balance payment, whichever is due (409 if none). Idempotent: "
            "the same method gives the same payment. Complete it at `payment_url` (or, in the "
            "sandbox, with `POST /payments/{id}/sandbox-card/`)."
        ),
        request=PayInputSerializer,
        responses={201: PaymentSerializer},
    )
    @action(detail=True, methods=["post"])
    def pay(self, request, pk=None):
        data = self._input(PayInputSerializer, request)
        payment = services.order_payment_start(
            order=self._visible_order(),
            actor=request.user,
            method=data["method"],
            return_url=data["return_url"],
        )
        return Response(
            PaymentSerializer(payment, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
        )

    @_transition("Production done: ask the buyer for the balance (suppliers)")
    @action(detail=True, methods=["post"], url_path="request-balance")
    def request_balance(self, request, pk=None):
        note = self._input(NoteInputSerializer, request)["note"]
        return self._respond(
            services.order_request_balance(
                order=self._visible_order(), actor=request.user, note=note
            )
        )

    @_transition("Production done, no balance due: ready to ship (suppliers)")
    @action(detail=True, methods=["post"], url_path="mark-ready")
    def mark_ready(self, request, pk=None):
        note = self._input(NoteInputSerializer, request)["note"]
        return self._respond(
            services.order_mark_ready(order=self._visible_order(), actor=request.user, note=note)
        )

    @extend_schema(
        summary="Record the shipment with its documents (suppliers, multipart)",
        request={"multipart/form-data": ShipInputSerializer},
        responses={200: OrderDetailSerializer},
    )
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser])
    def ship(self, request, pk=None):
        data = self._input(ShipInputSerializer, request)
        documents = [
            services.ShipmentDocumentUpload(kind=kind, file=data[kind])
            for kind in services.REQUIRED_SHIPMENT_DOCUMENTS
        ]
        return self._respond(
            services.order_ship(
                order=self._visible_order(),
                actor=request.user,
                carrier=data["carrier"],
                tracking_number=data["tracking_number"],
                shipped_on=data["shipped_on"],
                documents=documents,
                note=data["note"],
            )
        )

    @_transition(
        "Give the supplier more time to ship (buyers)",
        request=ExtendShipmentDeadlineInputSerializer,
    )
    @action(detail=True, methods=["post"], url_path="extend-shipment-deadline")
    def extend_shipment_deadline(self, request, pk=None):
        data = self._input(ExtendShipmentDeadlineInputSerializer, request)
        return self._respond(
            services.order_extend_shipment_deadline(
                order=self._visible_order(),
                actor=request.user,
                new_deadline=data["new_deadline"],
                note=data["note"],
            )
        )

    @_transition("Cancel a late order with a full refund (buyers)", request=ReasonInputSerializer)
    @action(detail=True, methods=["post"], url_path="cancel-late")
    def cancel_late(self, request, pk=None):
        reason = self._input(ReasonInputSerializer, request)["reason"]
        return self._respond(
            services.order_cancel_late_with_refund(
                order=self._visible_order(), actor=request.user, reason=reason
            )
        )

    @_transition("Confirm the goods arrived (buyers)")
    @action(detail=True, methods=["post"], url_path="confirm-receipt")
    def confirm_receipt(self, request, pk=None):
        note = self._input(NoteInputSerializer, request)["note"]
        return self._respond(
            services.order_confirm_receipt(
                order=self._visible_order(), actor=request.user, note=note
            )
        )

    @_transition("Extend the receipt window by 15 days (once per party)")
    @action(detail=True, methods=["post"], url_path="extend-receipt-window")
    def extend_receipt_window(self, request, pk=None):
        note = self._input(NoteInputSerializer, request)["note"]
        return self._respond(
            services.order_extend_receipt_window(
                order=self._visible_order(), actor=request.user, note=note
            )
        )

    @_transition("Accept the goods and release the payment (buyers, post-delivery)")
    @action(detail=True, methods=["post"], url_path="accept-goods")
    def accept_goods(self, request, pk=None):
        note = self._input(NoteInputSerializer, request)["note"]
        return self._respond(
            services.order_accept_goods(order=self._visible_order(), actor=request.user, note=note)
        )

    @extend_schema(
        summary="Rate a completed order 1 to 5 (buyers)",
        request=RateInputSerializer,
        responses={201: RatingSerializer},
    )
    @action(detail=True, methods=["post"])
    def rate(self, request, pk=None):
        data = self._input(RateInputSerializer, request)
        rating = services.order_rate(
            order=self._visible_order(),
            actor=request.user,
            score=data["score"],
            comment=data["comment"],
        )
        return Response(RatingSerializer(rating).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Download a shipping document (parties only)",
        parameters=[OpenApiParameter("document_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        description=(
            "The bytes, as `application/octet-stream` (an attachment); the document's "
            "`content_type` says what they are."
        ),
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The file (PDF or image), as an attachment."
            )
        },
    )
    @action(detail=True, methods=["get"], url_path=r"documents/(?P<document_id>\d+)")
    def document(self, request, pk=None, document_id=None):
        from tradeassure.core.uploads import upload_response

        document = selectors.shipment_document_for_user(
            user=request.user, order_pk=self._order_id(), pk=int(document_id)
        )
        return upload_response(
            name=document.stored_name,
            download_name=document.original_name,
            content_type="application/octet-stream",
        )
