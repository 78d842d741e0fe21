"""REST routes of the graphs app, under /api/v1/ (docs/protocol.md)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from graphs import views

# Namespaced: the pages use the plain names graph-list and graph-detail.
app_name = "graphs"

# SimpleRouter: no browsable API root, and two apps can share the /api/v1/ prefix without both claiming it.
router = SimpleRouter()
router.register("graphs", views.GraphViewSet, basename="graph")
router.register("groups", views.GroupViewSet, basename="group")

urlpatterns = [
    path("me/", views.MeView.as_view(), name="me"),
    *router.urls,
]
