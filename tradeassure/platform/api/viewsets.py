"""Base classes every `/api/v1/` view derives from (they carry the Idempotency-Key handling)."""

from rest_framework import mixins, views, viewsets

from tradeassure.platform.api.idempotency import IdempotentMixin


class ApiView(IdempotentMixin, views.APIView):
    pass


class ApiViewSet(IdempotentMixin, viewsets.GenericViewSet):
    pass


class ReadOnlyApiViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    pass
