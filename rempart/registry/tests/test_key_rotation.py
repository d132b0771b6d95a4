import base64
import os

from django.core.management import call_command

from rempart.lib import crypto
from rempart.registry.models import Beneficiary, Professional


def test_rotation_reencrypts_under_the_new_key_and_keeps_values(
    insurer, rows_for, rights_file, tmp_path, settings, cast
):
    from rempart.registry.rights_import import import_rights

    import_rights(rights_file(rows_for(30)), insurer, report_dir=tmp_path / "r", show_progress=False)
    shop = Professional.objects.get(pk=cast.optician.professional_id)
    shop.set_iban("FR7630004000010001234567830")
    shop.save()
    before = {
        b.pk: crypto.field_cipher().decrypt("nir", b.nir_cipher)
        for b in Beneficiary.objects.exclude(nir_cipher=None)
    }

    new_key = base64.b64encode(os.urandom(32)).decode()
    settings.REMPART_DATA_KEYS = f"{settings.REMPART_DATA_KEYS},2:{new_key}"
    settings.REMPART_DATA_KEY_ID = "2"
    crypto.field_cipher.cache_clear()
    try:
        call_command("rotate_keys")
        cipher = crypto.field_cipher()
        for b in Beneficiary.objects.exclude(nir_cipher=None):
            assert cipher.key_id_of(b.nir_cipher) == 2
            assert cipher.decrypt("nir", b.nir_cipher) == before[b.pk]
        shop.refresh_from_db()
        assert cipher.key_id_of(shop.iban_cipher) == 2 and shop.masked_iban().endswith("7830")
        # Old key removed: everything still opens.
        settings.REMPART_DATA_KEYS = f"2:{new_key}"
        crypto.field_cipher.cache_clear()
        b = Beneficiary.objects.exclude(nir_cipher=None).first()
        assert crypto.field_cipher().decrypt("nir", b.nir_cipher) == before[b.pk]
    finally:
        crypto.field_cipher.cache_clear()
