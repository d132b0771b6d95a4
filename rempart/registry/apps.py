from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "rempart.registry"
    label = "registry"
    verbose_name = "Registre des droits"
