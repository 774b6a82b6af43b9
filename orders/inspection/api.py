"""`/api/v1/preshipment-inspections/`: list and read (the order's parties, the inspection company,
permitted staff), book (buyer), pay the fee (buyer), cancel an unpaid booking (buyer), propose
dates (supplier), report (inspector, multipart), agree to a replacement (buyer), download a report
file. POSTs go through the Idempotency-Key cycle of every API view; outsiders get 404."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.models import Organisation
from orders.error_codes import OrderErrorCode
from orders.inspection import selectors, services
from orders.inspection.models import PreshipmentInspection
from orders.inspection.serializers import (
    InspectionBookInputSerializer,
    InspectionDatesInputSerializer,
    InspectionFeePayInputSerializer,
    InspectionNoteInputSerializer,
    InspectionReportInputSerializer,
    PreshipmentInspectionSerializer,
)
from orders.selectors import order_for_user
from payments.api.serializers import PaymentSerializer
from tradeassure.core.errors import NotFound
from tradeassure.core.uploads import upload_response
from tradeassure.platform.api.parsers import JSONParser, MultiPartParser
from tradeassure.platform.api.viewsets import ApiViewSet


def _step(summary: str, description: str, request=InspectionNoteInputSerializer):
    return extend_schema(
        summary=summary,
        description=description,
        request=request,
        responses={200: PreshipmentInspectionSerializer},
    )


@extend_schema_view(
    list=extend_schema(
        summary="Pre-shipment inspections you may see",
        description="Of your organisation's orders (buyer or supplier), or assigned to your "
        "inspection company once paid. Newest first.",
    ),
    retrieve=extend_schema(summary="One pre-shipment inspection with its report and timeline"),
    create=extend_schema(
        summary="Book a pre-shipment inspection (buyers)",
        description="After the initial payment, while the goods have not shipped, at least "
        "`TA_PRESHIPMENT_INSPECTION_WORKING_DAYS` (7) working days before the shipment "
        "deadline, from an approved inspection company; one at a time per order. Publishes "
        "`order.inspection_booked`; the supplier is told. Pay the fee next.",
        request=InspectionBookInputSerializer,
        responses={201: PreshipmentInspectionSerializer},
    ),
)
class PreshipmentInspectionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    queryset = PreshipmentInspection.objects.none()
    serializer_class = PreshipmentInspectionSerializer
    filter_backends: list = []
    ordering = ["-booked_at", "-id"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return PreshipmentInspection.objects.none()
        return (
            selectors.inspections_visible_to(self.request.user)
            .select_related("order", "organisation", "contract_version")
            .prefetch_related("files", "events")
            .order_by("-booked_at", "-id")
        )

    def get_parsers(self):
        """The report takes multipart/form-data (its files); everything else JSON."""
        method = (getattr(getattr(self, "request", None), "method", "") or "").lower()
        action = getattr(self, "action", None) or (getattr(self, "action_map", None) or {}).get(
            method
        )
        if action == "report":
            return [MultiPartParser()]
        return [JSONParser()]

    def _inspection(self) -> PreshipmentInspection:
        try:
            pk = int(self.kwargs["pk"])
        except (TypeError, ValueError) as exc:
            raise NotFound("No such inspection.", code=OrderErrorCode.INSPECTION_NOT_FOUND) from exc
        return selectors.inspection_for_user(user=self.request.user, pk=pk)

    def _answer(self, pk: int, code: int = status.HTTP_200_OK) -> Response:
        inspection = selectors.inspection_for_user(user=self.request.user, pk=pk)
        return Response(
            PreshipmentInspectionSerializer(inspection, context=self.get_serializer_context()).data,
            status=code,
        )

    @staticmethod
    def _input(serializer_class, request) -> dict:
        serializer = serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def retrieve(self, request, *args, **kwargs):
        return self._answer(self._inspection().pk)

    def create(self, request, *args, **kwargs):
        data = self._input(InspectionBookInputSerializer, request)
        order = order_for_user(user=request.user, pk=data["order_id"])
        organisation = Organisation.objects.filter(pk=data["organisation_id"]).first()
        inspection = services.preshipment_inspection_book(
            order=order,
            actor=request.user,
            organisation=organisation,
            instructions=data["instructions"],
        )
        return self._answer(inspection.pk, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Pay the inspection fee (buyers)",
        description="Starts the payment through the payments provider (card or bank transfer); "
        "complete it like an order payment. The same inspection and method give the same "
        "payment. The fee is refunded (and charged to the supplier) if the goods do not conform.",
        request=InspectionFeePayInputSerializer,
        responses={201: PaymentSerializer},
    )
    @action(detail=True, methods=["post"], url_path="pay-fee")
    def pay_fee(self, request, pk=None):
        data = self._input(InspectionFeePayInputSerializer, request)
        payment = services.preshipment_inspection_fee_pay(
            inspection=self._inspection(), actor=request.user, method=data["method"]
        )
        return Response(
            PaymentSerializer(payment, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
        )

    @_step("Cancel an unpaid booking (buyers)", "Publishes `order.inspection_cancelled`.")
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        self._input(InspectionNoteInputSerializer, request)
        inspection = services.preshipment_inspection_cancel(
            inspection=self._inspection(), actor=request.user
        )
        return self._answer(inspection.pk)

    @_step(
        "Propose inspection dates (suppliers)",
        "From today to the shipment deadline, up to 5; replaces earlier ones. Publishes "
        "`order.inspection_dates_proposed`.",
        request=InspectionDatesInputSerializer,
    )
    @action(detail=True, methods=["post"], url_path="propose-dates")
    def propose_dates(self, request, pk=None):
        data = self._input(InspectionDatesInputSerializer, request)
        inspection = services.preshipment_inspection_propose_dates(
            inspection=self._inspection(),
            actor=request.user,
            dates=data["dates"],
            note=data["note"],
        )
        return self._answer(inspection.pk)

    @extend_schema(
        summary="Report (the inspection company)",
        description="multipart/form-data: `verdict`, `findings` and the report `files`. Settles "
        "the fee (refunded to the buyer when the goods do not conform, else paid to you). "
        "`does_not_conform` blocks shipment until the parties agree. Publishes "
        "`order.inspection_reported`.",
        request={"multipart/form-data": InspectionReportInputSerializer},
        responses={200: PreshipmentInspectionSerializer},
    )
    @action(detail=True, methods=["post"])
    def report(self, request, pk=None):
        data = self._input(InspectionReportInputSerializer, request)
        inspection = services.preshipment_inspection_report(
            inspection=self._inspection(),
            actor=request.user,
            verdict=data["verdict"],
            findings=data["findings"],
            files=data["files"],
        )
        return self._answer(inspection.pk)

    @_step(
        "Agree to a replacement of the goods (buyers)",
        "After a `does_not_conform` report: shipment is no longer blocked. Publishes "
        "`order.inspection_resolved`.",
    )
    @action(detail=True, methods=["post"], url_path="agree-replacement")
    def agree_replacement(self, request, pk=None):
        data = self._input(InspectionNoteInputSerializer, request)
        inspection = services.preshipment_inspection_agree_replacement(
            inspection=self._inspection(), actor=request.user, note=data["note"]
        )
        return self._answer(inspection.pk)

    @extend_schema(
        summary="Download a report file",
        parameters=[OpenApiParameter("file_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        description="The bytes, as `application/octet-stream` (an attachment); the file's "
        "`content_type` in the inspection says what they are.",
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The file (PDF or image), as an attachment."
            )
        },
    )
    @action(detail=True, methods=["get"], url_path=r"files/(?P<file_id>[^/.]+)")
    def file(self, request, pk=None, file_id=None):
        try:
            inspection_pk, file_pk = int(str(pk)), int(str(file_id))
        except ValueError as exc:
            raise NotFound("No such file.", code=OrderErrorCode.INSPECTION_NOT_FOUND) from exc
        file = selectors.inspection_file_for_user(
            user=request.user, inspection_pk=inspection_pk, pk=file_pk
        )
        return upload_response(
            name=file.stored_name,
            download_name=file.original_name,
            content_type="application/octet-stream",
        )
