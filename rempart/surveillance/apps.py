from django.apps import AppConfig


class SurveillanceConfig(AppConfig):
    name = "rempart.surveillance"
    label = "surveillance"
    verbose_name = "Surveillance"
