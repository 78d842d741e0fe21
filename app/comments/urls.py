"""REST routes of the comments app, under /api/v1/ (docs/protocol.md)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from comments import views

app_name = "comments"

router = SimpleRouter()
router.register("comments", views.CommentViewSet, basename="comment")
router.register("notifications", views.NotificationViewSet, basename="notification")

urlpatterns = [
    # What belongs to one graph's discussion sits under the graph, as the page reads it.
    path("graphs/<int:graph_id>/comments/", views.GraphCommentList.as_view(), name="graph-comments"),
    path("graphs/<int:graph_id>/events/", views.GraphEventList.as_view(), name="graph-events"),
    path("graphs/<int:graph_id>/pins/", views.GraphPinList.as_view(), name="graph-pins"),
    path("graphs/<int:graph_id>/people/", views.GraphPeopleList.as_view(), name="graph-people"),
    *router.urls,
]
