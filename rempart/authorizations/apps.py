from django.apps import AppConfig


class AuthorizationsConfig(AppConfig):
    name = "rempart.authorizations"
    label = "authorizations"
    verbose_name = "Prises en charge"
