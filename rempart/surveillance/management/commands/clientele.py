"""`rempart clientele`: seed the organisations' memory of the people they confirmed from the ledger (ahead of
traffic, rather than at each organisation's first check), or forget people not confirmed for `clientele_days`."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from rempart.accounts.models import Organisation
from rempart.surveillance import clientele
from rempart.surveillance.models import Clientele, ClienteleMember


class Command(BaseCommand):
    help = (
        "The new-identities memory (docs/surveillance.md): `seed [--organisation ID]` fills it from the "
        "disclosure ledger for one organisation or every professional one not seeded yet (`--again` reseeds); "
        "`purge` forgets people not confirmed within the memory's span."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=("seed", "purge"))
        parser.add_argument("--organisation", type=int, help="seed: this organisation's id only")
        parser.add_argument("--again", action="store_true", help="seed: also organisations seeded already")

    def handle(self, *args, action, organisation=None, again=False, **options):
        if action == "purge":
            self.stdout.write(f"{clientele.purge()} people forgotten")
            return
        if organisation is not None:
            if not Organisation.objects.filter(pk=organisation).exists():
                raise CommandError(f"no organisation {organisation}")
            ids = [organisation]
        else:
            ids = list(
                Organisation.objects.filter(kind=Organisation.Kind.PROFESSIONAL).values_list("pk", flat=True)
            )
        if not again:
            seeded = set(
                Clientele.objects.filter(organisation_id__in=ids).values_list("organisation_id", flat=True)
            )
            ids = [pk for pk in ids if pk not in seeded]
        for pk in ids:
            if again:
                Clientele.objects.filter(organisation_id=pk).delete()
            clientele.seed(pk)
            people = ClienteleMember.objects.filter(organisation_id=pk).count()
            self.stdout.write(f"organisation {pk}: {people} people remembered")
        clientele.forget()
