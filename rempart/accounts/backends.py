"""allauth's backend, minus the "account inactive" page: an inactive account answers like a wrong password,
so that a removed member's password is not confirmed to whoever types it."""

from allauth.account.auth_backends import AuthenticationBackend as AllauthBackend


class AuthenticationBackend(AllauthBackend):
    @classmethod
    def _stash_user(cls, user):
        return super()._stash_user(None)
