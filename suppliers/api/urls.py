from rest_framework.routers import SimpleRouter

from suppliers.api import views

router = SimpleRouter()
router.register("suppliers", views.SupplierViewSet, basename="supplier")
router.register("products", views.ProductViewSet, basename="product")
router.register("categories", views.CategoryViewSet, basename="category")

urlpatterns = router.urls
