from django.core.management.base import BaseCommand, CommandError

from rempart.accounts import demo


class Command(BaseCommand):
    help = "Demo only: print the current TOTP code of a demo login."

    def add_arguments(self, parser):
        parser.add_argument("email")

    def handle(self, *args, email, **options):
        try:
            self.stdout.write(demo.current_code(email.strip().lower()))
        except RuntimeError as exc:
            raise CommandError(str(exc)) from None
        except Exception:
            raise CommandError(f"no demo TOTP authenticator for {email!r}") from None
