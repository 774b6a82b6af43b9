"""The platform's own API resources (events, notifications, webhooks); mounted under /api/v1/
by the project's urls.py, in the "api" namespace beside every app's `api/urls.py`."""

from rest_framework.routers import SimpleRouter

from tradeassure.platform.api import views

router = SimpleRouter()
router.register("events", views.EventViewSet, basename="event")
router.register("notifications", views.NotificationViewSet, basename="notification")
router.register("webhook-endpoints", views.WebhookEndpointViewSet, basename="webhook-endpoint")
router.register("webhook-deliveries", views.WebhookDeliveryViewSet, basename="webhook-delivery")

urlpatterns = router.urls
