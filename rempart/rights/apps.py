from django.apps import AppConfig


class RightsConfig(AppConfig):
    name = "rempart.rights"
    label = "rights"
    verbose_name = "Vérification des droits"
