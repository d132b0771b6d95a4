from django.apps import AppConfig


class ClaimsConfig(AppConfig):
    name = "rempart.claims"
    label = "claims"
    verbose_name = "Factures"
