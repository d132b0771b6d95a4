from django.apps import AppConfig


class AccountingConfig(AppConfig):
    name = "rempart.accounting"
    label = "accounting"
    verbose_name = "Comptabilité"
