from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "rempart.ledger"
    label = "ledger"
    verbose_name = "Registre des divulgations"
