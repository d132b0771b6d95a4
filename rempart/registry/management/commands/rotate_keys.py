from django.core.management.base import BaseCommand

from rempart.lib.crypto import field_cipher
from rempart.registry.key_rotation import rotate_data_keys


class Command(BaseCommand):
    help = "Re-encrypt NIR, IBAN and second-factor secrets under the active data key (REMPART_DATA_KEY_ID)."

    def handle(self, *args, **options):
        active = field_cipher().keyring.active_id
        report = rotate_data_keys()
        self.stdout.write(
            f"Active key {active}: re-encrypted {report.beneficiaries:,} beneficiaries, "
            f"{report.professionals:,} professionals, {report.bank_changes:,} IBAN changes, "
            f"{report.authenticators:,} second factors."
        )
