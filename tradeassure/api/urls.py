"""`/api/v1/`: the API's own resources plus each app's `api/urls.py`."""

from django.urls import include, path, re_path
from rest_framework.routers import SimpleRouter

from tradeassure.api import views
from tradeassure.api.errors import api_not_found

router = SimpleRouter()
router.register("events", views.EventViewSet, basename="event")
router.register("notifications", views.NotificationViewSet, basename="notification")
router.register("webhook-endpoints", views.WebhookEndpointViewSet, basename="webhook-endpoint")
router.register("webhook-deliveries", views.WebhookDeliveryViewSet, basename="webhook-delivery")

app_name = "api"

urlpatterns = [
    path("", include("suppliers.api.urls")),
    path("", include("payments.api.urls")),
    path("", include("orders.api.urls")),
    path("", include("disputes.api.urls")),
    *router.urls,
    # Anything else under /api/v1/ answers as problem+json, not as the HTML 404 page.
    re_path(r"^.*$", api_not_found),
]
