from django.urls import path

from bench.floor import views

urlpatterns = [
    path("orders/", views.FloorOrderCreate.as_view()),
    path("buyers/<int:buyer_id>/orders/", views.list_html),
    path("buyers/<int:buyer_id>/orders.json", views.list_json),
    path("orders/<int:pk>/", views.detail_html),
    path("orders/<int:pk>.json", views.detail_json),
]
