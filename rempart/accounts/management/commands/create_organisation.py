from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from rempart.accounts import onboarding


class Command(BaseCommand):
    help = "Create an organisation (professional from its FINESS/SIRET, insurer from its AMC number, or operator) and invite its owner."

    def add_arguments(self, parser):
        parser.add_argument("--kind", choices=("professional", "insurer", "operator"), required=True)
        parser.add_argument("--owner-email", required=True)
        parser.add_argument("--finess", help="professional: FINESS (9 characters)")
        parser.add_argument("--siret", help="professional: SIRET (14 digits)")
        parser.add_argument("--amc", help="insurer: numéro AMC (9 digits), already in the registry")
        parser.add_argument(
            "--name", help="name (required for an operator or a professional not yet in the registry)"
        )
        parser.add_argument(
            "--role", help="operator: role of the first member (admin, support, security); default admin"
        )

    def handle(self, *args, kind, owner_email, finess, siret, amc, name, role, **options):
        try:
            organisation, url = onboarding.create_organisation(
                kind, owner_email, finess=finess, siret=siret, amc=amc, name=name, role=role
            )
        except onboarding.OnboardingError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Created {organisation.get_kind_display()} « {organisation.name} » (id {organisation.pk})."
        )
        hours = settings.REMPART_INVITATION_HOURS
        self.stdout.write(f"Invitation sent to {owner_email}; single-use link (expires in {hours} h):\n{url}")
