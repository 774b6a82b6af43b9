from django.urls import path

from suppliers import views

app_name = "suppliers"

urlpatterns = [
    path("", views.directory, name="directory"),
    path("<int:pk>/", views.profile, name="profile"),
    path("products/<int:pk>/", views.product_detail, name="product_detail"),
    path("products/<int:pk>/image/", views.product_image, name="product_image"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/profile/", views.profile_edit, name="profile_edit"),
    path("dashboard/apply/", views.apply_for_trade_assurance, name="apply"),
    path("dashboard/products/new/", views.product_new, name="product_new"),
    path("dashboard/products/<int:pk>/edit/", views.product_edit, name="product_edit"),
    path("dashboard/products/<int:pk>/active/", views.product_toggle, name="product_toggle"),
    path("dashboard/documents/", views.document_upload, name="document_upload"),
    path("dashboard/documents/<int:pk>/delete/", views.document_delete, name="document_delete"),
    path("documents/<int:pk>/", views.document_download, name="document_download"),
]
