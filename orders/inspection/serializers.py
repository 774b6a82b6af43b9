"""The pre-shipment inspection in the API: input serializers (one per POST) kept apart from the
output ones."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from orders.inspection.models import (
    PreshipmentInspection,
    PreshipmentInspectionEvent,
    PreshipmentInspectionFile,
)
from payments.models import Payment
from tradeassure.core.inspections import InspectionVerdict


# --- input -----------------------------------------------------------------------------------
class InspectionBookInputSerializer(serializers.Serializer):
    order_id = serializers.IntegerField(min_value=1, max_value=2**31 - 1)
    organisation_id = serializers.IntegerField(
        min_value=1, max_value=2**31 - 1, help_text="An approved inspection company."
    )
    instructions = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=5000
    )


class InspectionFeePayInputSerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=Payment.Method.choices)


class InspectionDatesInputSerializer(serializers.Serializer):
    dates = serializers.ListField(child=serializers.DateField(), min_length=1, max_length=5)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


class InspectionNoteInputSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class InspectionReportInputSerializer(serializers.Serializer):
    """multipart/form-data: the verdict, the findings and one or more `files` (PDF, PNG, JPEG or
    WebP; checked by content)."""

    verdict = serializers.ChoiceField(choices=InspectionVerdict.choices)
    findings = serializers.CharField(max_length=10000)
    files = serializers.ListField(child=serializers.FileField(), allow_empty=False, max_length=10)


# --- output ----------------------------------------------------------------------------------
class InspectionEventSerializer(serializers.ModelSerializer):
    data = serializers.DictField(  # type: ignore[assignment]
        read_only=True, help_text="The action's facts (an object)."
    )

    class Meta:
        model = PreshipmentInspectionEvent
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


class InspectionFileSerializer(serializers.ModelSerializer):
    class Meta:
        model = PreshipmentInspectionFile
        fields = ["id", "original_name", "content_type", "size", "uploaded_at"]
        read_only_fields = fields


class PreshipmentInspectionSerializer(serializers.ModelSerializer):
    order_id = serializers.IntegerField(read_only=True)
    order = serializers.CharField(source="order.reference", read_only=True)
    organisation_id = serializers.IntegerField(read_only=True)
    inspection_company = serializers.CharField(source="organisation.name", read_only=True)
    contract_version = serializers.IntegerField(source="contract_version.number", read_only=True)
    proposed_dates = serializers.SerializerMethodField()
    blocks_shipment = serializers.BooleanField(read_only=True)
    files = InspectionFileSerializer(many=True, read_only=True)
    events = InspectionEventSerializer(many=True, read_only=True)

    class Meta:
        model = PreshipmentInspection
        fields = [
            "id",
            "order_id",
            "order",
            "organisation_id",
            "inspection_company",
            "contract_version",
            "status",
            "instructions",
            "fee_amount",
            "currency",
            "booked_at",
            "fee_paid_at",
            "fee_settled_at",
            "fee_refunded",
            "proposed_dates",
            "dates_note",
            "verdict",
            "findings",
            "reported_at",
            "resolution",
            "resolution_note",
            "resolved_at",
            "blocks_shipment",
            "files",
            "events",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.DateField()))
    def get_proposed_dates(self, obj: PreshipmentInspection) -> list[str]:
        return list(obj.proposed_dates or [])
