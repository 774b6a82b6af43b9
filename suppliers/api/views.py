"""Public read endpoints: the supplier directory, supplier profiles, products and categories."""

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.permissions import AllowAny

from suppliers import selectors
from suppliers.api.serializers import CategorySerializer, ProductSerializer, SupplierSerializer
from suppliers.models import Category, Product, Supplier
from tradeassure.platform.api import filters as api_filters
from tradeassure.platform.api.viewsets import ReadOnlyApiViewSet


class SupplierFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="filter_query", help_text="Search company and product names."
    )
    country = django_filters.CharFilter(
        field_name="country", lookup_expr="iexact", help_text="ISO 3166-1 alpha-2, e.g. `CN`."
    )
    category = django_filters.CharFilter(method="filter_category", help_text="A category slug.")
    trade_assurance = api_filters.BooleanFilter(
        method="filter_trade_assurance", help_text="Only suppliers offering Trade Assurance."
    )

    class Meta:
        model = Supplier
        fields = ["q", "country", "category", "trade_assurance"]

    def filter_query(self, queryset, name, value):
        ids = selectors.supplier_directory(query=value).values("pk")
        return queryset.filter(pk__in=ids)

    def filter_category(self, queryset, name, value):
        return queryset.filter(pk__in=selectors.supplier_directory(category=value).values("pk"))

    def filter_trade_assurance(self, queryset, name, value):
        ids = selectors.supplier_directory(trade_assurance="yes" if value else "no").values("pk")
        return queryset.filter(pk__in=ids)


@extend_schema_view(
    list=extend_schema(summary="The supplier directory (public)", auth=[]),
    retrieve=extend_schema(summary="A supplier's public profile (public)", auth=[]),
)
class SupplierViewSet(ReadOnlyApiViewSet):
    queryset = Supplier.objects.none()
    serializer_class = SupplierSerializer
    permission_classes = [AllowAny]
    filterset_class = SupplierFilter
    ordering_fields = ["legal_name", "created_at", "id"]
    ordering = ["legal_name", "id"]

    def get_queryset(self):
        return (
            selectors.supplier_directory()
            .select_related("metrics")
            .prefetch_related("categories")
            .order_by()
        )


class ProductFilter(django_filters.FilterSet):
    supplier = api_filters.IntegerFilter(field_name="supplier_id")
    category = django_filters.CharFilter(field_name="category__slug")
    currency = django_filters.CharFilter()
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains")
    min_price = django_filters.NumberFilter(field_name="unit_price", lookup_expr="gte")
    max_price = django_filters.NumberFilter(field_name="unit_price", lookup_expr="lte")

    class Meta:
        model = Product
        fields = ["supplier", "category", "currency", "q"]


@extend_schema_view(
    list=extend_schema(summary="Active products (public)", auth=[]),
    retrieve=extend_schema(summary="One active product (public)", auth=[]),
)
class ProductViewSet(ReadOnlyApiViewSet):
    queryset = Product.objects.none()
    serializer_class = ProductSerializer
    permission_classes = [AllowAny]
    filterset_class = ProductFilter
    ordering_fields = ["name", "unit_price", "created_at", "id"]
    ordering = ["name", "id"]

    def get_queryset(self):
        return Product.objects.filter(is_active=True).select_related("category")


@extend_schema_view(
    list=extend_schema(summary="Product categories (public)", auth=[]),
    retrieve=extend_schema(summary="One category (public)", auth=[]),
)
class CategoryViewSet(ReadOnlyApiViewSet):
    queryset = Category.objects.none()
    serializer_class = CategorySerializer
    permission_classes = [AllowAny]
    filter_backends: list = []
    ordering = ["name", "id"]

    def get_queryset(self):
        return selectors.categories_all()
