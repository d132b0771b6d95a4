"""rempart.lib.fast_insert: the rows COPY writes are the rows the ORM would write, ids included."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from rempart.accounts.models import Organisation
from rempart.lib import fast_insert
from rempart.registry.models import Professional


@pytest.mark.django_db
def test_rows_come_back_as_the_orm_wrote_them_with_their_ids():
    shops = [
        Professional(finess=None, name=f"Officine {n} « l'Étoile »", domains=["PHAR", "OPTI"][: n % 2 + 1])
        for n in range(5)
    ]
    fast_insert.insert(shops)
    assert all(shop.pk for shop in shops) and len({shop.pk for shop in shops}) == 5
    stored = {p.pk: p for p in Professional.objects.filter(pk__in=[s.pk for s in shops])}
    for shop in shops:
        assert stored[shop.pk].name == shop.name  # quotes and accents, as given
        assert stored[shop.pk].domains == shop.domains  # JSON, as the ORM stores it
        assert stored[shop.pk].convention == "conventionne"  # the field's default
    # The next row the ORM writes gets a fresh id: the sequence moved past the copied rows.
    later = Professional.objects.create(name="Après")
    assert later.pk > max(shop.pk for shop in shops)
    # Auto-now-add fields are filled as by the ORM.
    organisation = Organisation(kind="professional", name="Org", professional=shops[0])
    fast_insert.insert([organisation])
    assert Organisation.objects.get(pk=organisation.pk).created_at is not None


@pytest.mark.django_db
def test_a_constraint_refuses_the_whole_batch():
    Professional.objects.create(finess="750000010", name="Déjà là")
    with pytest.raises(IntegrityError), transaction.atomic():
        fast_insert.insert(
            [Professional(finess="750000028", name="A"), Professional(finess="750000010", name="B")]
        )
    assert not Professional.objects.filter(name__in=["A", "B"]).exists()
