from django.urls import path

from orders import views
from orders.conversation import views as conversation_views
from orders.inspection import views as inspection_views

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
    path("<int:pk>/inspection/book/", inspection_views.inspection_book, name="inspection_book"),
    path(
        "<int:pk>/inspection/<int:inspection_pk>/pay/",
        inspection_views.inspection_pay,
        name="inspection_pay",
    ),
    path(
        "<int:pk>/inspection/<int:inspection_pk>/cancel/",
        inspection_views.inspection_cancel,
        name="inspection_cancel",
    ),
    path(
        "<int:pk>/inspection/<int:inspection_pk>/dates/",
        inspection_views.inspection_dates,
        name="inspection_dates",
    ),
    path(
        "<int:pk>/inspection/<int:inspection_pk>/agree-replacement/",
        inspection_views.inspection_agree_replacement,
        name="inspection_agree_replacement",
    ),
    path(
        "inspections/<int:inspection_pk>/report/",
        inspection_views.inspection_report,
        name="inspection_report",
    ),
    path(
        "inspections/<int:inspection_pk>/files/<int:file_pk>/",
        inspection_views.inspection_file,
        name="inspection_file",
    ),
    path("<int:pk>/<slug:action>/", views.order_action, name="action"),
]
