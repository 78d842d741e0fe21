"""REST routes of the graphs app (filled in by the REST API work)."""

urlpatterns: list = []
