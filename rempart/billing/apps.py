from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "rempart.billing"
    label = "billing"
    verbose_name = "Facturation des assureurs"
