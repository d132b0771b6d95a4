from django.core.management.base import BaseCommand, CommandError

from rempart.lib.identifiers import InvalidIdentifier, validate_amc_number
from rempart.registry.models import Insurer


class Command(BaseCommand):
    help = "Register a complementary insurer (AMC) served by the platform."

    def add_arguments(self, parser):
        parser.add_argument("--amc", required=True, help="numéro AMC, 9 digits")
        parser.add_argument("--name", required=True)
        parser.add_argument("--kind", choices=Insurer.Kind.values, required=True)
        parser.add_argument("--dpo-name", default="")
        parser.add_argument("--dpo-email", default="")
        parser.add_argument("--dpo-phone", default="")

    def handle(self, *args, amc, name, kind, dpo_name, dpo_email, dpo_phone, **options):
        try:
            validate_amc_number(amc)
        except InvalidIdentifier as exc:
            raise CommandError(str(exc)) from None
        insurer, created = Insurer.objects.update_or_create(
            amc_number=amc,
            defaults={
                "name": name,
                "kind": kind,
                "dpo_name": dpo_name,
                "dpo_email": dpo_email,
                "dpo_phone": dpo_phone,
            },
        )
        self.stdout.write(f"{'Created' if created else 'Updated'} {insurer}")
