"""Disputes: open, list, detail, messages, proposals (propose/accept/reject), evidence (multipart
upload and download), escalate, withdraw, and paying an inspection fee. Mediation itself happens
in the admin."""

import django_filters
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
from rest_framework.response import Response

from disputes import selectors, services
from disputes.api.serializers import (
    AcceptProposalInputSerializer,
    CitedMessageSerializer,
    CiteMessageInputSerializer,
    DisputeDetailSerializer,
    DisputeMessageSerializer,
    DisputeNoteInputSerializer,
    DisputeOpenInputSerializer,
    DisputeOpenMultipartInputSerializer,
    DisputeReasonInputSerializer,
    DisputeSerializer,
    EvidenceSerializer,
    EvidenceUploadInputSerializer,
    InspectionFeeInputSerializer,
    MessageInputSerializer,
    ProposalSerializer,
    ProposeInputSerializer,
    RejectProposalInputSerializer,
    outcome_terms_from,
)
from disputes.error_codes import DisputeErrorCode
from disputes.models import Dispute, DisputeStatus, DisputeType
from orders.selectors import order_for_user
from payments.api.serializers import PaymentSerializer
from tradeassure.core.errors import NotFound
from tradeassure.platform.api import filters as api_filters
from tradeassure.platform.api.parsers import JSONParser, MultiPartParser
from tradeassure.platform.api.viewsets import ApiViewSet


class DisputeFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=DisputeStatus.choices)
    type = django_filters.ChoiceFilter(choices=DisputeType.choices)
    order = api_filters.IntegerFilter(field_name="order_id")
    opened_after = api_filters.IsoDateTimeFilter(field_name="opened_at", lookup_expr="gte")
    opened_before = api_filters.IsoDateTimeFilter(field_name="opened_at", lookup_expr="lt")

    class Meta:
        model = Dispute
        fields = ["status", "type", "order"]


def _transition(summary: str, request=DisputeNoteInputSerializer, code: int = 200):
    return extend_schema(
        summary=summary, request=request, responses={code: DisputeDetailSerializer}
    )


_OPEN_EXAMPLE = OpenApiExample(
    "Quality not as agreed: partial refund",
    request_only=True,
    value={
        "order_id": 42,
        "type": "quality",
        "description": "30 of 500 chargers fail the 65 W output test (report attached).",
        "remedy": "partial_refund",
        "refund_amount": "240.00",
    },
)


@extend_schema_view(
    list=extend_schema(summary="Disputes on your orders"),
    retrieve=extend_schema(
        summary="One dispute with its messages, proposals, evidence and timeline",
        responses=DisputeDetailSerializer,
    ),
    create=extend_schema(
        summary="Open a dispute (buyers)",
        description=(
            "Freezes the order and its escrow; the request becomes the first proposal; the "
            "supplier has 3 days to answer. Claims about the goods need evidence: send the "
            "request as multipart/form-data with `files`, or add more later with "
            "`POST /disputes/{id}/evidence/`."
        ),
        request={
            "application/json": DisputeOpenInputSerializer,
            "multipart/form-data": DisputeOpenMultipartInputSerializer,
        },
        responses={201: DisputeDetailSerializer},
        examples=[_OPEN_EXAMPLE],
    ),
)
class DisputeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    queryset = Dispute.objects.none()
    serializer_class = DisputeSerializer
    filterset_class = DisputeFilter
    ordering_fields = ["opened_at", "updated_at", "id"]
    ordering = ["-opened_at", "-id"]

    def get_queryset(self):
        return selectors.disputes_visible_to(self.request.user)

    def _dispute_id(self) -> int:
        try:
            return int(self.kwargs["pk"])
        except (TypeError, ValueError) as exc:
            raise NotFound("No such dispute.", code=DisputeErrorCode.DISPUTE_NOT_FOUND) from exc

    def _visible(self) -> Dispute:
        return selectors.dispute_for_user(user=self.request.user, pk=self._dispute_id())

    def _detail(self, dispute_id: int, code: int = status.HTTP_200_OK) -> Response:
        dispute = selectors.dispute_for_user(user=self.request.user, pk=dispute_id)
        actions = selectors.dispute_page_actions(dispute=dispute, user=self.request.user)
        context = {**self.get_serializer_context(), "actions": actions}
        return Response(DisputeDetailSerializer(dispute, context=context).data, status=code)

    @staticmethod
    def _input(serializer_class, request) -> dict:
        serializer = serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def retrieve(self, request, *args, **kwargs):
        return self._detail(self._dispute_id())

    def get_parsers(self):
        """Opening a dispute takes JSON, or multipart with the evidence files attached."""
        method = (getattr(getattr(self, "request", None), "method", "") or "").lower()
        action = getattr(self, "action", None) or (getattr(self, "action_map", None) or {}).get(
            method
        )
        if action == "create":
            return [JSONParser(), MultiPartParser()]
        return super().get_parsers()

    def create(self, request, *args, **kwargs):
        data = self._input(DisputeOpenMultipartInputSerializer, request)
        try:
            order = order_for_user(user=request.user, pk=data["order_id"])
        except NotFound:
            from tradeassure.core.errors import ValidationFailed

            raise ValidationFailed(
                "No such order.", fields={"order_id": ["No such order."]}
            ) from None
        dispute = services.dispute_open(
            order=order,
            actor=request.user,
            type=data["type"],
            description=data["description"],
            terms=outcome_terms_from(data),
            evidence_files=data.get("files", []),
        )
        return self._detail(dispute.pk, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Send a message to the other side (and the mediator)",
        request=MessageInputSerializer,
        responses={201: DisputeMessageSerializer},
    )
    @action(detail=True, methods=["post"])
    def messages(self, request, pk=None):
        data = self._input(MessageInputSerializer, request)
        message = services.dispute_message_send(
            dispute=self._visible(), actor=request.user, body=data["body"]
        )
        return Response(DisputeMessageSerializer(message).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Propose a remedy (replaces your open proposal)",
        request=ProposeInputSerializer,
        responses={201: ProposalSerializer},
    )
    @action(detail=True, methods=["post"])
    def proposals(self, request, pk=None):
        data = self._input(ProposeInputSerializer, request)
        proposal = services.dispute_propose(
            dispute=self._visible(),
            actor=request.user,
            terms=outcome_terms_from(data),
            message=data["message"],
        )
        return Response(ProposalSerializer(proposal).data, status=status.HTTP_201_CREATED)

    @_transition(
        "Accept the other side's open proposal: the dispute settles now",
        request=AcceptProposalInputSerializer,
    )
    @action(detail=True, methods=["post"], url_path="accept-proposal")
    def accept_proposal(self, request, pk=None):
        data = self._input(AcceptProposalInputSerializer, request)
        dispute = services.dispute_accept(
            dispute=self._visible(), actor=request.user, proposal_id=data["proposal_id"]
        )
        return self._detail(dispute.pk)

    @_transition("Reject the other side's open proposal", request=RejectProposalInputSerializer)
    @action(detail=True, methods=["post"], url_path="reject-proposal")
    def reject_proposal(self, request, pk=None):
        data = self._input(RejectProposalInputSerializer, request)
        dispute = services.dispute_reject(
            dispute=self._visible(), actor=request.user, message=data["message"]
        )
        return self._detail(dispute.pk)

    @_transition("Ask for a mediator (buyers, from day 4)")
    @action(detail=True, methods=["post"])
    def escalate(self, request, pk=None):
        note = self._input(DisputeNoteInputSerializer, request)["note"]
        dispute = services.dispute_escalate(dispute=self._visible(), actor=request.user, note=note)
        return self._detail(dispute.pk)

    @_transition(
        "Withdraw the dispute (buyers, before escalation)", request=DisputeReasonInputSerializer
    )
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        reason = self._input(DisputeReasonInputSerializer, request)["reason"]
        dispute = services.dispute_withdraw(
            dispute=self._visible(), actor=request.user, reason=reason
        )
        return self._detail(dispute.pk)

    @extend_schema(
        summary="Upload evidence (multipart; PDF or images, checked by content and size)",
        request={"multipart/form-data": EvidenceUploadInputSerializer},
        responses={201: EvidenceSerializer(many=True)},
    )
    # A bare array of what was stored: no list filters, no pagination (in the schema too).
    @action(
        detail=True,
        methods=["post"],
        parser_classes=[MultiPartParser],
        pagination_class=None,
        filter_backends=[],
    )
    def evidence(self, request, pk=None):
        data = self._input(EvidenceUploadInputSerializer, request)
        evidence = services.dispute_evidence_add(
            dispute=self._visible(),
            actor=request.user,
            files=data["files"],
            description=data["description"],
        )
        return Response(
            EvidenceSerializer(evidence, many=True).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        summary="Cite a message of the order's conversation as evidence (parties)",
        description="The message must be on the dispute's order and not hidden by staff; citing "
        "the same message again answers with the first citation.",
        request=CiteMessageInputSerializer,
        responses={201: CitedMessageSerializer},
    )
    @action(detail=True, methods=["post"], url_path="cite-message")
    def cite_message(self, request, pk=None):
        data = self._input(CiteMessageInputSerializer, request)
        cited = services.dispute_cite_message(
            dispute=self._visible(),
            actor=request.user,
            message_id=data["message_id"],
            note=data["note"],
        )
        return Response(CitedMessageSerializer(cited).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Download evidence (parties, mediators and the inspector only)",
        parameters=[OpenApiParameter("evidence_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        description=(
            "The bytes, as `application/octet-stream` (an attachment); the evidence's "
            "`content_type` says what they are."
        ),
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The file (PDF or image)."
            )
        },
    )
    @action(detail=True, methods=["get"], url_path=r"evidence/(?P<evidence_id>\d+)")
    def evidence_download(self, request, pk=None, evidence_id=None):
        from tradeassure.core.uploads import upload_response

        evidence = selectors.evidence_for_user(
            user=request.user, dispute_pk=self._dispute_id(), pk=int(evidence_id)
        )
        return upload_response(
            name=evidence.stored_name,
            download_name=evidence.original_name,
            content_type="application/octet-stream",
        )

    @extend_schema(
        summary="Pay the inspection fee a mediator ordered (buyers)",
        description="Starts the payment; complete it like an order payment.",
        request=InspectionFeeInputSerializer,
        responses={201: PaymentSerializer},
    )
    @action(detail=True, methods=["post"], url_path="pay-inspection-fee")
    def pay_inspection_fee(self, request, pk=None):
        data = self._input(InspectionFeeInputSerializer, request)
        dispute = self._visible()
        inspection = next(
            (i for i in dispute.inspections.all() if i.pk == data["inspection_id"]), None
        )
        if inspection is None:
            raise NotFound(
                "No such inspection on this dispute.", code=DisputeErrorCode.INSPECTION_NOT_FOUND
            )
        payment = services.dispute_inspection_fee_pay(
            inspection=inspection, actor=request.user, method=data["method"]
        )
        return Response(
            PaymentSerializer(payment, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
        )
