from django.apps import AppConfig


class WebConfig(AppConfig):
    """The pages people use: sign-in, the list of graphs, and the graph page with its comment panel."""

    name = "web"
    verbose_name = "Web pages"
