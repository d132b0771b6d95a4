from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "rempart.accounts"
    label = "accounts"
    verbose_name = "Comptes"

    def ready(self) -> None:
        from rempart.accounts import mfa_hardening, sessions, signals  # noqa: F401 - registers receivers
        from rempart.lib import redact

        redact.install()
        mfa_hardening.install()
