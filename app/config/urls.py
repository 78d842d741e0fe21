"""URLs: the REST API under /api/v1/, the health check, and the pages."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from config.metrics import metrics_view
from config.views import healthz
from web.views import throttle_logins

handler404 = "config.views.page_not_found"
handler500 = "config.views.server_error"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    # Prometheus, for the HTTP side (mod_wsgi's processes); Apache admits only its allow list to this path.
    path("metrics", metrics_view, name="metrics"),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/v1/", include("graphs.urls")),
    path("api/v1/", include("comments.urls")),
    # The admin's sign-in form is a login too: the same limits as the pages' (web.views.throttle_logins).
    path("admin/login/", throttle_logins(admin.site.login)),
    path("admin/", admin.site.urls),
    path("", include("web.urls")),
]
