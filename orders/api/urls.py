from rest_framework.routers import SimpleRouter

from orders.api import views
from orders.conversation.api import OrderMessageViewSet
from orders.inspection.api import PreshipmentInspectionViewSet

router = SimpleRouter()
router.register("orders", views.OrderViewSet, basename="order")
router.register(
    r"orders/(?P<order_id>[^/.]+)/messages", OrderMessageViewSet, basename="order-message"
)
router.register(
    "preshipment-inspections", PreshipmentInspectionViewSet, basename="preshipment-inspection"
)

urlpatterns = router.urls
