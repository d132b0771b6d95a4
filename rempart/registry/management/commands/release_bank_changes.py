"""Write down the IBAN changes whose hold has ended (for a scheduler; payments never wait for it)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from rempart.registry import bank_hold


class Command(BaseCommand):
    help = (
        "Apply every new IBAN whose hold (REMPART_IBAN_HOLD_DAYS) has ended and tell the owners. Payment runs "
        "already pay the new IBAN from the end of the hold whether or not this ran; run it hourly."
    )

    def handle(self, *args, **options) -> None:
        released = bank_hold.release_due()
        for change in released:
            self.stdout.write(
                f"released: change {change.pk} of professional {change.professional_id}, {change.iban_masked}"
            )
        self.stdout.write(
            f"{len(released)} change(s) released, {bank_hold.pending_changes().count()} still on hold"
        )
