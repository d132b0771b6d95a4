"""Names written with typographic apostrophes, decomposed accents, odd dashes or spaces are the same names.

Before issue 12 such rows were rejected, so those people got *no match* at the counter; and a person
written two ways would have been re-imported as a change.
"""

from __future__ import annotations

import unicodedata

import pytest

from rempart.lib.crypto import field_cipher
from rempart.lib.names import normalise_name
from rempart.registry import rights_format as fmt
from rempart.registry.models import Beneficiary
from rempart.registry.tests.support import FIRST, LAST, read_errors, run_import


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("D\u2019Artagnan", "D'Artagnan"),  # ’ right single quotation mark
        ("D\u02bcArtagnan", "D'Artagnan"),  # ʼ modifier letter apostrophe
        ("D`Artagnan", "D'Artagnan"),
        ("D\u00b4Artagnan", "D'Artagnan"),  # ´ acute accent used as an apostrophe
        ("Le\u00a0Gall", "Le Gall"),  # no-break space
        ("Le\u202fGall", "Le Gall"),  # narrow no-break space
        ("Le \t  Gall", "Le Gall"),
        ("Jean\u2010Pierre", "Jean-Pierre"),  # ‐ hyphen
        ("Jean\u2011Pierre", "Jean-Pierre"),  # ‑ non-breaking hyphen
        ("Jean\u2013Pierre", "Jean-Pierre"),  # – en dash
        ("Jean\u2014Pierre", "Jean-Pierre"),  # — em dash
        (unicodedata.normalize("NFD", "Hélène Noël"), "Hélène Noël"),
        ("  Hélène  ", "Hélène"),
        ("EXEMPLE", "EXEMPLE"),  # case is kept: it is the insurer's to choose
        ("Ørsted", "Ørsted"),
    ],
)
def test_normalise_name(written, canonical):
    assert normalise_name(written) == canonical
    assert normalise_name(canonical) == canonical  # idempotent


def test_normalised_names_are_nfc():
    decomposed = unicodedata.normalize("NFD", "Éloïse Müller-Ærø")
    assert decomposed != "Éloïse Müller-Ærø"
    result = normalise_name(decomposed)
    assert unicodedata.is_normalized("NFC", result) and result == "Éloïse Müller-Ærø"


def test_a_row_check_accepts_and_stores_the_normalised_name(insurer, rows_for):
    [row] = rows_for(1)
    row[LAST] = "D\u2019Artagnan\u2013" + unicodedata.normalize("NFD", "Lefèvre")
    row[FIRST] = "Marie\u00a0Thérèse"
    parsed = fmt.parse_row(row, insurer.amc_number, field_cipher())
    assert (parsed.last_name, parsed.first_name) == ("D'Artagnan-Lefèvre", "Marie Thérèse")


def test_the_60_character_limit_counts_letters_not_code_points(insurer, rows_for):
    [row] = rows_for(1)
    row[LAST] = unicodedata.normalize("NFD", "é" * 60)  # 120 code points, 60 letters
    assert fmt.parse_row(row, insurer.amc_number, field_cipher()).last_name == "é" * 60
    row[LAST] = "é" * 61
    with pytest.raises(fmt.RowError, match="longer than 60"):
        fmt.parse_row(row, insurer.amc_number, field_cipher())


@pytest.mark.parametrize("bad", ["D\u201cArtagnan", "Jean_Pierre", "R2D2", "\u2019Artagnan", "\u2014"])
def test_what_is_not_a_name_is_still_rejected(insurer, rows_for, bad):
    [row] = rows_for(1)
    row[LAST] = bad
    with pytest.raises(fmt.RowError) as caught:
        fmt.parse_row(row, insurer.amc_number, field_cipher())
    assert caught.value.column == "last_name"


def test_a_file_with_typographic_names_imports_and_stores_them_canonically(
    insurer, rows_for, rights_file, tmp_path
):
    rows = rows_for(6)
    rows[0][LAST] = "D\u2019Artagnan"
    rows[1][LAST] = unicodedata.normalize("NFD", "Bélanger")
    rows[2][FIRST] = "Jean\u2011Pierre"
    rows[3][LAST] = "Le\u00a0Gall"
    run, summary = run_import(rights_file(rows), insurer, tmp_path)
    assert read_errors(run) == []
    assert (summary.created, summary.rejected) == (6, 0)
    names = set(Beneficiary.objects.values_list("last_name", flat=True))
    first_names = set(Beneficiary.objects.values_list("first_name", flat=True))
    assert {"D'Artagnan", "Bélanger", "Le Gall"} <= names
    assert "Jean-Pierre" in first_names
    assert all(unicodedata.is_normalized("NFC", n) for n in names | first_names)


def test_the_same_person_written_differently_is_unchanged_on_reimport(
    insurer, rows_for, rights_file, tmp_path
):
    rows = rows_for(4)
    rows[0][LAST], rows[1][LAST], rows[2][FIRST], rows[3][LAST] = (
        "D'Artagnan",
        "Bélanger",
        "Jean-Pierre",
        "Le Gall",
    )
    run_import(rights_file(rows), insurer, tmp_path)
    stored = list(
        Beneficiary.objects.order_by("pk").values_list("pk", "fingerprint", "last_name", "first_name")
    )

    rewritten = [list(row) for row in rows]
    rewritten[0][LAST] = "D\u2019Artagnan"
    rewritten[1][LAST] = unicodedata.normalize("NFD", "Bélanger")
    rewritten[2][FIRST] = "Jean\u2013Pierre"
    rewritten[3][LAST] = "Le\u202f\u00a0Gall"
    _run, summary = run_import(rights_file(rewritten), insurer, tmp_path)
    assert (summary.unchanged, summary.updated, summary.created, summary.rejected) == (4, 0, 0, 0)
    assert (
        list(Beneficiary.objects.order_by("pk").values_list("pk", "fingerprint", "last_name", "first_name"))
        == stored
    )


def test_a_real_change_of_name_is_still_an_update(insurer, rows_for, rights_file, tmp_path):
    rows = rows_for(2)
    rows[0][LAST] = "D'Artagnan"
    run_import(rights_file(rows), insurer, tmp_path)
    rows[0][LAST] = "D\u2019Artagnan-Lefèvre"
    _run, summary = run_import(rights_file(rows), insurer, tmp_path)
    assert (summary.unchanged, summary.updated) == (1, 1)
    assert Beneficiary.objects.filter(last_name="D'Artagnan-Lefèvre").exists()
