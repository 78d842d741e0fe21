"""The pages. The graph page's data comes from the REST API and the WebSocket (docs/protocol.md)."""

from django.contrib.auth import views as auth_views
from django.urls import path

from web import views

urlpatterns = [
    path("", views.graph_list, name="graph-list"),
    path("graphs/<int:pk>/", views.graph_detail, name="graph-detail"),
    path(
        "accounts/login/",
        views.throttle_logins(
            auth_views.LoginView.as_view(template_name="web/login.html", redirect_authenticated_user=True)
        ),
        name="login",
    ),
    # Django's LogoutView takes POST only (a GET could be forged by any <img>); the header has a small form.
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]
