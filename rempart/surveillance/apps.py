from django.apps import AppConfig


class SurveillanceConfig(AppConfig):
    name = "rempart.surveillance"
    label = "surveillance"
    verbose_name = "Surveillance"

    def ready(self) -> None:
        from rempart.surveillance import (
            admission,
            bank_change,  # noqa: F401 - judges IBAN changes (hijacked accounts)
            bindings,  # noqa: F401 - registers the receiver of refused sessions
            forwarding,  # noqa: F401 - sends new alerts on (email, webhook, syslog) once committed
        )

        admission.register()  # the token's surveillance state read with the token itself
