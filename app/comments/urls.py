"""REST routes of the comments app (filled in by the REST API work)."""

urlpatterns: list = []
