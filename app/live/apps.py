from django.apps import AppConfig


class LiveConfig(AppConfig):
    """The live path: WebSockets, the per-worker fan-out, presence, access re-checks and draining."""

    name = "live"
    verbose_name = "Live updates"

    def ready(self) -> None:
        from live import signals  # noqa: F401 - connects the receivers
