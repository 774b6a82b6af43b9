from django.urls import path

from orders import views
from orders.conversation import views as conversation_views

app_name = "orders"

urlpatterns = [
    path("", views.buyer_list, name="buyer_list"),
    path("incoming/", views.supplier_list, name="supplier_list"),
    path("new/", views.order_create, name="create"),
    path("new/totals/", views.order_totals, name="totals"),
    path("<int:pk>/", views.order_detail, name="detail"),
    path("<int:pk>/pay/", views.order_pay, name="pay"),
    path("<int:pk>/ship/", views.order_ship, name="ship"),
    path("<int:pk>/propose/", views.order_propose_changes, name="propose_changes"),
    path(
        "<int:pk>/extend-shipment-deadline/",
        views.order_extend_shipment_deadline,
        name="extend_shipment_deadline",
    ),
    path(
        "<int:pk>/accept-goods/confirm/",
        views.order_accept_goods_confirm,
        name="accept_goods_confirm",
    ),
    path("<int:pk>/rate/", views.order_rate, name="rate"),
    path(
        "<int:pk>/documents/<int:document_pk>/",
        views.shipment_document,
        name="shipment_document",
    ),
    path("<int:pk>/messages/", conversation_views.message_post, name="message_post"),
    path(
        "<int:pk>/messages/<int:message_pk>/files/<int:attachment_pk>/",
        conversation_views.message_attachment,
        name="message_attachment",
    ),
    path("<int:pk>/<slug:action>/", views.order_action, name="action"),
]
