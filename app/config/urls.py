"""URLs: the REST API under /api/v1/, the health check, and the pages."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from config.views import healthz

handler404 = "config.views.page_not_found"
handler500 = "config.views.server_error"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/v1/", include("graphs.urls")),
    path("api/v1/", include("comments.urls")),
    path("admin/", admin.site.urls),
    path("", include("web.urls")),
]
