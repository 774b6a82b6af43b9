from rest_framework.routers import SimpleRouter

from orders.api import views
from orders.conversation.api import OrderMessageViewSet

router = SimpleRouter()
router.register("orders", views.OrderViewSet, basename="order")
router.register(
    r"orders/(?P<order_id>[^/.]+)/messages", OrderMessageViewSet, basename="order-message"
)

urlpatterns = router.urls
