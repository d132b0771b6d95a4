from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "rempart.ops"
    label = "ops"
    verbose_name = "Operations"
