from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from rempart.accounts import demo
from rempart.accounts.models import User
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
        money = self._seed_payments(cast, insurer)
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
        self._print_payments(money)
        self.stdout.write(
            "\nSecond factor: each demo login has a TOTP authenticator; get its current code with\n"
            "  .venv/bin/rempart demo-code EMAIL\n"
            "or type one of its recovery codes instead (codes de secours, each works once; all of them with\n"
            "  .venv/bin/rempart demo-code EMAIL --recovery):"
        )
        for person, _organisation in cast:
            try:
                unused = demo.unused_recovery_codes(person.email)
                shown = unused[0] if unused else "(all used)"
            except RuntimeError:
                shown = "(regenerated in the portal: shown there once)"
            self.stdout.write(f"  {person.email:<30} {shown}")
        self.stdout.write(
            f"Emails (invitations, notices) are printed on this console. Base URL: {settings.REMPART_BASE_URL}"
        )

    def _seed_payments(self, cast, insurer):
        """The optician's invoices, a run approved (its statement under *Paiements*), a run for the treasurer."""
        from rempart.payments import demo as payments_demo

        organisations = {person.email: organisation for person, organisation in cast}
        users = {user.email: user for user in User.objects.filter(email__in=organisations)}
        optician = organisations[demo.OPTICIAN_OWNER]
        return payments_demo.seed_payments(
            optician, insurer, preparer=users[demo.OPERATOR_ADMIN], approver=users[demo.TREASURER]
        )

    def _print_payments(self, money) -> None:
        if money.approved is not None:
            self.stdout.write(
                f"\nPayments: run {money.approved.reference} approved; its statement (relevé) is under Paiements "
                f"(/comptoir/paiements/) for {demo.OPTICIAN_OWNER}."
            )
        if money.prepared is not None:
            self.stdout.write(
                f"Run {money.prepared.reference} waits for the second pair of eyes: {demo.TREASURER} approves it "
                f"at /operateur/paiements/{money.prepared.reference}/ (second factor asked again)."
            )
        if money.note:
            self.stdout.write(f"Payments: {money.note}.")

    def _plant_canaries(self) -> int:
        """Two canaries (at least: whole families) in the registry of every insurer with contracts that
        has none alive, the largest and the demo's own included (docs/surveillance.md)."""
        from rempart.registry.models import Contract, Insurer
        from rempart.surveillance import canaries
        from rempart.surveillance.models import Canary

        planted = 0
        alive = Canary.objects.filter(retired_at__isnull=True).values("insurer_id")
        for insurer in Insurer.objects.exclude(pk__in=alive).order_by("pk"):
            if not Contract.objects.filter(insurer=insurer).exists():
                continue
            try:
                planted += len(canaries.plant(insurer, 2))
            except (ValueError, RuntimeError) as exc:
                raise CommandError(
                    f"canaries not planted for {insurer.name} (AMC {insurer.amc_number}): {exc}"
                ) from exc
        return planted
