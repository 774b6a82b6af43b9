from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from tradeassure import developers, health, views

admin.site.site_header = "TradeAssure staff"
admin.site.site_title = "TradeAssure staff"
admin.site.index_title = "Vetting, mediation and money"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("notifications/", views.notification_list, name="notifications"),
    path("notifications/read/", views.notification_mark_all_read, name="notifications_read"),
    path("accounts/", include("accounts.urls")),
    path("suppliers/", include("suppliers.urls")),
    path("orders/", include("orders.urls")),
    path("payments/", include("payments.urls")),
    path("disputes/", include("disputes.urls")),
    path("admin/", admin.site.urls),
    # Partner API (owner: API helper): the API, its schema and offline docs, the Developers page.
    path("api/v1/", include("tradeassure.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/docs/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("developers/", include(developers.urlpatterns)),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
