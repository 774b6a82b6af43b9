from rest_framework.routers import SimpleRouter

from orders.api import views

router = SimpleRouter()
router.register("orders", views.OrderViewSet, basename="order")

urlpatterns = router.urls
