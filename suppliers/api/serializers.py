"""Public read-only representations of suppliers, products and categories."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from suppliers.models import Category, Product, Supplier, SupplierMetrics


class CategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ["id", "name", "slug"]
        read_only_fields = fields


class SupplierMetricsSerializer(serializers.ModelSerializer):
    """Rolling-window performance from real order history (see the README's definitions)."""

    class Meta:
        model = SupplierMetrics
        fields = [
            "computed_at",
            "window_days",
            "orders_count",
            "completion_rate",
            "on_time_rate",
            "dispute_rate",
            "disputes_lost",
            "average_rating",
            "ratings_count",
            "median_hours_to_confirm",
        ]
        read_only_fields = fields


class SupplierSerializer(serializers.ModelSerializer):
    # many=True makes DRF build a ManyRelatedField around the slug field (the stubs see __init__).
    categories: "serializers.RelatedField[Category, str, str] | serializers.ManyRelatedField" = (
        serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)
    )
    trade_assurance = serializers.BooleanField(
        source="has_trade_assurance",
        read_only=True,
        help_text="Whether new orders with this supplier are protected by Trade Assurance.",
    )
    business_verified = serializers.SerializerMethodField()
    metrics = serializers.SerializerMethodField()

    class Meta:
        model = Supplier
        fields = [
            "id",
            "legal_name",
            "country",
            "year_established",
            "description",
            "categories",
            "membership",
            "trade_assurance",
            "ta_status",
            "business_verified",
            "declared_capacity",
            "verified_capacity",
            "metrics",
            "created_at",
        ]
        read_only_fields = fields

    def get_business_verified(self, supplier: Supplier) -> bool:
        return supplier.verification_status == "approved"

    @extend_schema_field(SupplierMetricsSerializer(allow_null=True))
    def get_metrics(self, supplier: Supplier) -> dict | None:
        try:
            metrics = supplier.metrics
        except SupplierMetrics.DoesNotExist:
            return None
        return SupplierMetricsSerializer(metrics).data


class ProductSerializer(serializers.ModelSerializer):
    supplier_id = serializers.IntegerField(read_only=True)
    category: "serializers.SlugRelatedField[Category]" = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True
    )

    class Meta:
        model = Product
        fields = [
            "id",
            "supplier_id",
            "name",
            "category",
            "description",
            "specifications",
            "unit",
            "unit_price",
            "currency",
            "minimum_order_quantity",
            "lead_time_days",
            "created_at",
        ]
        read_only_fields = fields
