from rest_framework.routers import SimpleRouter

from payments.api import views

router = SimpleRouter()
router.register("payments", views.PaymentViewSet, basename="payment")

urlpatterns = router.urls
