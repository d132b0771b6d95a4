from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "rempart.payments"
    label = "payments"
    verbose_name = "Paiements"
