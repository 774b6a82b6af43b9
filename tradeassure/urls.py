from csp.decorators import csp_update
from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from tradeassure.platform import developers, health, team, views
from tradeassure.platform.api.errors import api_not_found
from tradeassure.platform.security import StaffAdminSite

# Staff verify a TOTP device to use the admin (mediators move money there): the default site,
# where every app registers, becomes django-otp's OTPAdminSite (its log-in form asks for the code).
admin.site.__class__ = StaffAdminSite
admin.site.site_header = "TradeAssure staff"
admin.site.site_title = "TradeAssure staff"
admin.site.index_title = "Vetting, mediation and money"

# /api/v1/ (namespace "api"): each app's `api/urls.py` and the platform's own resources.
api_v1_patterns: list[URLPattern | URLResolver] = [
    path("", include("suppliers.api.urls")),
    path("", include("payments.api.urls")),
    path("", include("orders.api.urls")),
    path("", include("disputes.api.urls")),
    path("", include("tradeassure.platform.api.urls")),
    # Anything else under /api/v1/ answers as problem+json, not as the HTML 404 page.
    # `[\s\S]`, not `.`: a path with an encoded newline (%0A) is still a problem+json 404.
    re_path(r"^[\s\S]*\Z", api_not_found),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("healthz/live", health.live, name="healthz-live"),
    path("healthz/ready", health.healthz, name="healthz-ready"),
    path("notifications/", views.notification_list, name="notifications"),
    path("notifications/read/", views.notification_mark_all_read, name="notifications_read"),
    path("accounts/", include("accounts.urls")),
    path("suppliers/", include("suppliers.urls")),
    path("orders/", include("orders.urls")),
    path("payments/", include("payments.urls")),
    path("disputes/", include("disputes.urls")),
    path("admin/", admin.site.urls),
    # Partner API (owner: API helper): the API, its schema and offline docs, the Developers page.
    path("api/v1/", include((api_v1_patterns, "api"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split Swagger view serves its initialiser as a script file (no inline script). Redoc
    # styles its page with style elements it creates: that page alone allows inline styles.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api-schema", template_name="api_docs/swagger_ui.html"
        ),
        name="api-docs",
    ),
    path(
        "api/docs/redoc/",
        csp_update({"style-src": ["'unsafe-inline'"], "worker-src": ["'self'", "blob:"]})(
            SpectacularRedocView.as_view(url_name="api-schema", template_name="api_docs/redoc.html")
        ),
        name="api-redoc",
    ),
    path("developers/", include(developers.urlpatterns)),
    path("team/", include(team.urlpatterns)),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
