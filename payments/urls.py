from django.urls import path

from payments import views

app_name = "payments"
urlpatterns = [
    path("money/", views.supplier_money, name="money"),
    path("money/payout/", views.supplier_payout_request, name="payout_request"),
    path("webhooks/<str:provider>/", views.provider_webhook, name="webhook"),
    path("<uuid:public_id>/", views.payment_detail, name="payment_detail"),
    path("<uuid:public_id>/status/", views.payment_status, name="payment_status"),
    path("<uuid:public_id>/card/", views.payment_card, name="payment_card"),
    path(
        "<uuid:public_id>/transfer/", views.payment_transfer_simulate_view, name="payment_transfer"
    ),
]
