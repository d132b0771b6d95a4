from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "rempart.incidents"
    label = "incidents"
    verbose_name = "Incidents"
