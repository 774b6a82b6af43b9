from rest_framework.routers import SimpleRouter

from disputes.api import views

router = SimpleRouter()
router.register("disputes", views.DisputeViewSet, basename="dispute")

urlpatterns = router.urls
