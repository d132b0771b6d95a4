from django.apps import AppConfig


class PscConfig(AppConfig):
    name = "rempart.psc"
    label = "psc"
    verbose_name = "Pro Santé Connect"

    def ready(self) -> None:
        from rempart.psc import signals  # noqa: F401 - registers receivers
