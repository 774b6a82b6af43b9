"""Disputes over the API. Inputs only shape the request; `disputes.services` decides."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from disputes.models import (
    REQUESTABLE_REMEDIES,
    CitedMessage,
    Dispute,
    DisputeEvent,
    DisputeMessage,
    DisputeType,
    Evidence,
    EvidenceRequest,
    Inspection,
    Proposal,
    Remedy,
)
from disputes.terms import OutcomeTerms
from payments.models import Payment
from tradeassure.core.money import AMOUNT_DECIMAL_PLACES, AMOUNT_MAX_DIGITS


def _money(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES, **kwargs
    )


# --- input ---------------------------------------------------------------------------------------
# What a buyer may request and parties propose (a mediator may also decide "no_refund").
REQUESTABLE_REMEDY_CHOICES = [(remedy.value, remedy.label) for remedy in REQUESTABLE_REMEDIES]


class RemedyInputSerializer(serializers.Serializer):
    remedy = serializers.ChoiceField(choices=REQUESTABLE_REMEDY_CHOICES)
    refund_amount = _money(required=False, allow_null=True, help_text="For partial_refund.")
    new_shipment_deadline = serializers.DateTimeField(
        required=False, allow_null=True, help_text="For new_agreement."
    )
    price_reduction = _money(required=False, allow_null=True, help_text="For new_agreement.")
    replacement = serializers.BooleanField(required=False, default=False)
    terms_note = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=5000
    )


def outcome_terms_from(data: dict) -> OutcomeTerms:
    return OutcomeTerms(
        remedy=data["remedy"],
        refund_amount=data.get("refund_amount"),
        new_shipment_deadline=data.get("new_shipment_deadline"),
        price_reduction=data.get("price_reduction"),
        replacement=data.get("replacement", False),
        terms_note=data.get("terms_note", ""),
    )


class DisputeOpenInputSerializer(RemedyInputSerializer):
    order_id = serializers.IntegerField()
    type = serializers.ChoiceField(choices=DisputeType.choices)
    description = serializers.CharField(max_length=10000)


class DisputeOpenMultipartInputSerializer(DisputeOpenInputSerializer):
    """The same as JSON, as multipart/form-data, with the evidence `files` attached at once."""

    files = serializers.ListField(
        child=serializers.FileField(),
        required=False,
        max_length=10,
        help_text="Evidence: PDF, PNG, JPEG or WebP (checked by content and size).",
    )


class ProposeInputSerializer(RemedyInputSerializer):
    message = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class MessageInputSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=5000)


class CiteMessageInputSerializer(serializers.Serializer):
    message_id = serializers.IntegerField(help_text="A message of the order's conversation.")
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=300)


class AcceptProposalInputSerializer(serializers.Serializer):
    proposal_id = serializers.IntegerField(help_text="The other side's open proposal.")


class RejectProposalInputSerializer(serializers.Serializer):
    message = serializers.CharField(max_length=5000, help_text="Why you reject it.")


class DisputeNoteInputSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class DisputeReasonInputSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class EvidenceUploadInputSerializer(serializers.Serializer):
    """multipart/form-data: one or more `files` (PDF, PNG, JPEG or WebP; checked by content)."""

    files = serializers.ListField(child=serializers.FileField(), allow_empty=False, max_length=10)
    description = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=300
    )


class InspectionFeeInputSerializer(serializers.Serializer):
    inspection_id = serializers.IntegerField()
    method = serializers.ChoiceField(choices=Payment.Method.choices)


# --- output --------------------------------------------------------------------------------------
class DisputeEventSerializer(serializers.ModelSerializer):
    # A declared field (moved off the class by the metaclass), not Serializer.data.
    data = serializers.DictField(  # type: ignore[assignment]
        read_only=True, help_text="The action's facts (an object)."
    )

    class Meta:
        model = DisputeEvent
        fields = [
            "id",
            "action",
            "actor_party",
            "from_status",
            "to_status",
            "note",
            "data",
            "created_at",
        ]
        read_only_fields = fields


class DisputeMessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = DisputeMessage
        fields = ["id", "author_party", "body", "created_at"]
        read_only_fields = fields


class ProposalSerializer(serializers.ModelSerializer):
    class Meta:
        model = Proposal
        fields = [
            "id",
            "party",
            "remedy",
            "refund_amount",
            "new_shipment_deadline",
            "price_reduction",
            "replacement",
            "terms_note",
            "message",
            "state",
            "created_at",
            "answered_at",
        ]
        read_only_fields = fields


class CitedMessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = CitedMessage
        fields = ["id", "message", "party", "note", "cited_at"]
        read_only_fields = fields


class EvidenceSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Evidence
        fields = [
            "id",
            "party",
            "description",
            "original_name",
            "content_type",
            "size",
            "uploaded_at",
            "download_url",
        ]
        read_only_fields = fields

    def get_download_url(self, evidence: Evidence) -> str:
        return f"/api/v1/disputes/{evidence.dispute_id}/evidence/{evidence.pk}/"


class EvidenceRequestSerializer(serializers.ModelSerializer):
    class Meta:
        model = EvidenceRequest
        fields = ["id", "requested_from", "note", "due_at", "state", "created_at", "answered_at"]
        read_only_fields = fields


class InspectionSerializer(serializers.ModelSerializer):
    inspector = serializers.CharField(source="organisation.name", read_only=True)

    class Meta:
        model = Inspection
        fields = [
            "id",
            "inspector",
            "instructions",
            "fee_amount",
            "currency",
            "state",
            "ordered_at",
            "fee_due_at",
            "fee_paid_at",
            "verdict",
            "findings",
            "reported_at",
        ]
        read_only_fields = fields


class _BlankAsNullChoiceField(serializers.ChoiceField):
    """A choice the model stores as "" until it is made: null on the wire, so the schema's
    enum (plus null) is what the server sends."""

    def to_representation(self, value):
        return None if value in ("", None) else super().to_representation(value)


class DisputeSerializer(serializers.ModelSerializer):
    reference = serializers.CharField(read_only=True)
    order_id = serializers.IntegerField(read_only=True)
    outcome = _BlankAsNullChoiceField(
        choices=Remedy.choices,
        allow_null=True,
        read_only=True,
        help_text="The remedy the dispute ended with; null until it is resolved.",
    )

    class Meta:
        model = Dispute
        fields = [
            "id",
            "reference",
            "order_id",
            "type",
            "status",
            "description",
            "requested_remedy",
            "requested_amount",
            "currency",
            "opened_at",
            "supplier_response_due_at",
            "buyer_may_escalate_at",
            "escalation_due_at",
            "escalated_at",
            "pickup_due_at",
            "outcome",
            "outcome_refund",
            "outcome_reason",
            "resolved_via",
            "closed_at",
            "updated_at",
        ]
        read_only_fields = fields


class DisputeActionsSerializer(serializers.Serializer):
    your_party = serializers.CharField(allow_null=True)
    message = serializers.BooleanField()
    propose = serializers.BooleanField()
    reject_proposal = serializers.BooleanField()
    accept_proposal_id = serializers.IntegerField(allow_null=True)
    add_evidence = serializers.BooleanField()
    withdraw = serializers.BooleanField()
    escalate = serializers.BooleanField()
    escalate_from = serializers.DateTimeField(allow_null=True)
    pay_inspection_id = serializers.IntegerField(allow_null=True)


class DisputeDetailSerializer(DisputeSerializer):
    timeline = DisputeEventSerializer(source="events", many=True, read_only=True)
    messages = DisputeMessageSerializer(many=True, read_only=True)
    proposals = ProposalSerializer(many=True, read_only=True)
    evidence = EvidenceSerializer(many=True, read_only=True)
    evidence_requests = EvidenceRequestSerializer(many=True, read_only=True)
    inspections = InspectionSerializer(many=True, read_only=True)
    actions = serializers.SerializerMethodField()

    class Meta(DisputeSerializer.Meta):
        fields = [
            *DisputeSerializer.Meta.fields,
            "timeline",
            "messages",
            "proposals",
            "evidence",
            "evidence_requests",
            "inspections",
            "actions",
        ]
        read_only_fields = fields

    @extend_schema_field(DisputeActionsSerializer)
    def get_actions(self, dispute: Dispute) -> dict:
        actions = self.context["actions"]
        return {
            "your_party": actions.party,
            "message": actions.message,
            "propose": actions.propose,
            "reject_proposal": actions.reject,
            "accept_proposal_id": actions.accept.pk if actions.accept else None,
            "add_evidence": actions.add_evidence,
            "withdraw": actions.withdraw,
            "escalate": actions.escalate,
            "escalate_from": actions.escalate_from,
            "pay_inspection_id": actions.pay_inspection.pk if actions.pay_inspection else None,
        }
