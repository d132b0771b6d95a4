from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from rempart.accounts import demo
from rempart.registry import seeding
from rempart.registry.models import Beneficiary


class Command(BaseCommand):
    help = (
        "Demo only: synthetic registry data (if empty) and one organisation of each kind with known logins."
    )

    def add_arguments(self, parser):
        parser.add_argument("--beneficiaries", type=int, default=2000)
        parser.add_argument("--seed", type=int, default=1)

    def handle(self, *args, beneficiaries, seed, **options):
        demo.refuse_in_production()
        if not Beneficiary.objects.exists():
            self.stdout.write(f"Generating {beneficiaries:,} synthetic beneficiaries (seed {seed}) …")
            seeding.populate(seed, beneficiaries)
        cast = demo.create_demo_cast()
        planted = self._plant_canaries()
        insurer = next(org.insurer for _person, org in cast if org.insurer_id)
        family = seeding.demo_family(insurer, timezone.localdate())
        self.stdout.write(f"\nDemo logins (password for all: {demo.DEMO_PASSWORD}):")
        for person, organisation in cast:
            self.stdout.write(f"  {person.email:<30} {person.role:<10} {organisation.name}")
        self.stdout.write(
            "\nSynthetic cards to try the counter page (/comptoir/droits/, domain OPTI or PHAR):"
        )
        for card in family:
            self.stdout.write(
                f"  {card['who']}: AMC {card['amc']}, adhérent {card['adherent']}, NIR {card['nir']}, "
                f"né(e) le {card['birth_date']}, rang {card['rank']}"
            )
        if planted:
            self.stdout.write(
                f"\nCanary beneficiaries planted: {planted} (sealed; soc@… sees them under Surveillance → Canaris)."
            )
        self.stdout.write(
            "\nSecond factor: each demo login has a TOTP authenticator; get its current code with\n"
            "  .venv/bin/rempart demo-code EMAIL\n"
            f"Emails (invitations, notices) are printed on this console. Base URL: {settings.REMPART_BASE_URL}"
        )

    def _plant_canaries(self) -> int:
        """Two canaries in each insurer's registry that has none (docs/surveillance.md)."""
        from rempart.registry.models import Insurer
        from rempart.surveillance import canaries
        from rempart.surveillance.models import Canary

        planted = 0
        for insurer in Insurer.objects.exclude(pk__in=Canary.objects.values("insurer_id")):
            if Beneficiary.objects.filter(contract__insurer=insurer).exists():
                planted += len(canaries.plant(insurer, 2))
        return planted
