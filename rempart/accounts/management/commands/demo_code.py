from django.core.management.base import BaseCommand, CommandError

from rempart.accounts import demo


class Command(BaseCommand):
    help = (
        "Demo only: print the current TOTP code of a demo login, or with --recovery its unused recovery codes "
        "(codes de secours: each works once, in place of the TOTP code)."
    )

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument(
            "--recovery", action="store_true", help="the login's unused recovery codes, one a line"
        )

    def handle(self, *args, email, recovery, **options):
        email = email.strip().lower()
        try:
            if recovery:
                codes = demo.unused_recovery_codes(email)
                if not codes:
                    raise CommandError(f"every recovery code of {email} has been used: log in with TOTP")
                self.stdout.write("\n".join(codes))
            else:
                self.stdout.write(demo.current_code(email))
        except RuntimeError as exc:
            raise CommandError(str(exc)) from None
        except CommandError:
            raise
        except Exception:
            raise CommandError(f"no demo TOTP authenticator for {email!r}") from None
