"""The floor's views: a bare DRF CreateAPIView, plain Django list and detail (HTML and JSON)."""

from django.http import Http404, JsonResponse
from django.shortcuts import render
from rest_framework import generics, serializers

from bench.floor.models import FloorOrder

FIELDS = ["id", "buyer_id", "supplier_id", "status", "currency", "total", "summary", "placed_at"]


class FloorOrderSerializer(serializers.ModelSerializer):
    class Meta:
        model = FloorOrder
        fields = [*FIELDS, "terms"]
        read_only_fields = ["id", "status", "placed_at"]


class FloorOrderCreate(generics.CreateAPIView):
    serializer_class = FloorOrderSerializer


def _page(buyer_id: int) -> list[FloorOrder]:
    return list(FloorOrder.objects.filter(buyer_id=buyer_id).only(*FIELDS)[:25])


def _row(order: FloorOrder) -> dict:
    return {name: str(getattr(order, name)) for name in FIELDS}


def list_html(request, buyer_id: int):
    return render(request, "floor/list.html", {"orders": _page(buyer_id)})


def list_json(request, buyer_id: int):
    return JsonResponse({"results": [_row(order) for order in _page(buyer_id)]})


def _one(pk: int) -> FloorOrder:
    try:
        return FloorOrder.objects.get(pk=pk)
    except FloorOrder.DoesNotExist:
        raise Http404 from None


def detail_html(request, pk: int):
    return render(request, "floor/detail.html", {"order": _one(pk)})


def detail_json(request, pk: int):
    order = _one(pk)
    return JsonResponse({**_row(order), "terms": order.terms})
