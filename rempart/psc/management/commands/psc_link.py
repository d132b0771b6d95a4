from django.core.management.base import BaseCommand, CommandError

from rempart.accounts.models import User
from rempart.psc import linking


class Command(BaseCommand):
    help = (
        "Link a member to their RPPS, so that they may log in with Pro Santé Connect (or --remove the link)."
    )

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("rpps", nargs="?", help="11 digits (or PSC's 12-digit form, 8 + RPPS)")
        parser.add_argument("--remove", action="store_true", help="detach the member's RPPS")

    def handle(self, *args, email, rpps, remove, **options):
        user = User.objects.filter(email__iexact=email.strip()).first()
        if user is None:
            raise CommandError(f"no person with the address {email}")
        if remove:
            removed = linking.unlink(user)
            self.stdout.write(
                f"{user.email}: RPPS detached." if removed else f"{user.email} had no RPPS linked."
            )
            return
        if not rpps:
            raise CommandError("give the RPPS, or --remove")
        try:
            identity = linking.link(user, rpps)
        except linking.LinkRefused as refusal:
            raise CommandError(str(refusal)) from None
        self.stdout.write(f"{user.email} may log in with Pro Santé Connect as RPPS {identity.rpps}.")
