"""Bad rows: each reported with its line, column and reason (never the value); good rows go in."""

from __future__ import annotations

import pytest

from rempart.registry.models import Beneficiary, Contract, ImportRun
from rempart.registry.tests.support import (  # noqa: I001
    ADHERENT,
    AMC,
    BIRTH,
    C_END,
    C_START,
    C_STATUS,
    COV_END,
    COV_START,
    FIRST,
    LAST,
    MEMBER,
    NIR,
    OD_NIR,
    PRODUCT,
    QUALITY,
    RANK,
    SEX,
    beneficiary_by_key,
    card_nir_matches,
    nirs_of,
    read_errors,
    report_text,
    run_import,
)

WRONG_KEY_NIR = "185077512345600"  # the right key is 59

# (column index, bad value, column named in the report); None as index: the row loses or gains a field.
CASES = [
    (None, "drop", "(row)"),
    (None, "add", "(row)"),
    (AMC, "999999999", "amc_number"),
    (AMC, "", "amc_number"),
    (ADHERENT, "", "adherent_number"),
    (ADHERENT, "AB CD", "adherent_number"),
    (ADHERENT, "A" * 21, "adherent_number"),
    (ADHERENT, "ÉLÈVE1", "adherent_number"),
    (ADHERENT, "-123", "adherent_number"),
    (PRODUCT, "", "product_code"),
    (PRODUCT, "ES S", "product_code"),
    (PRODUCT, "P" * 21, "product_code"),
    (PRODUCT, "UNKNOWN", "product_code"),  # well formed, but not in the insurer's products
    (C_START, "", "contract_start"),
    (C_START, "01/10/2020", "contract_start"),
    (C_START, "2020-02-30", "contract_start"),
    (C_START, "2020-1-1", "contract_start"),
    (C_END, "2020-13-01", "contract_end"),
    (C_END, "1999-01-01", "contract_end"),  # before the contract's start
    (C_STATUS, "", "contract_status"),
    (C_STATUS, "resilie", "contract_status"),
    (MEMBER, "", "member_number"),
    (MEMBER, "0", "member_number"),
    (MEMBER, "100", "member_number"),
    (MEMBER, "1a", "member_number"),
    (MEMBER, "-1", "member_number"),
    (MEMBER, "\u00b2", "member_number"),  # a superscript two is a digit to str.isdigit()
    (MEMBER, "\u0663", "member_number"),  # an Arabic-Indic three
    (QUALITY, "", "quality"),
    (QUALITY, "PARENT", "quality"),
    (LAST, "", "last_name"),
    (LAST, "Dupont2", "last_name"),
    (LAST, "L" * 61, "last_name"),
    (LAST, "<script>", "last_name"),
    (LAST, "_Dupont", "last_name"),
    (FIRST, "", "first_name"),
    (FIRST, "J@n", "first_name"),
    (SEX, "", "sex"),
    (SEX, "X", "sex"),
    (SEX, "H", "sex"),
    (BIRTH, "", "birth_date"),
    (BIRTH, "1980-13-01", "birth_date"),
    (BIRTH, "1980-02-30", "birth_date"),
    (BIRTH, "1980-00-05", "birth_date"),
    (BIRTH, "80-01-01", "birth_date"),
    (BIRTH, "1850-01-01", "birth_date"),
    (BIRTH, "1980/01/01", "birth_date"),
    (RANK, "0", "birth_rank"),
    (RANK, "10", "birth_rank"),
    (RANK, "a", "birth_rank"),
    (RANK, "\u00b2", "birth_rank"),
    (NIR, WRONG_KEY_NIR, "nir"),
    (NIR, "12345", "nir"),
    (NIR, "985077512345659", "nir"),
    (OD_NIR, WRONG_KEY_NIR, "ouvrant_droit_nir"),
    (OD_NIR, "1850775123456", "ouvrant_droit_nir"),
    (COV_START, "", "coverage_start"),
    (COV_START, "2020-02-30", "coverage_start"),
    (COV_END, "2020-13-01", "coverage_end"),
    (COV_END, "1900-01-01", "coverage_end"),  # before the coverage start
]


def mutate(row: list[str], index: int | None, value: str) -> list[str]:
    row = list(row)
    if index is None:
        return row[:-1] if value == "drop" else [*row, ""]
    row[index] = value
    return row


def test_each_column_rule_reports_line_and_column(insurer, rows_for, rights_file, tmp_path):
    rows = rows_for(len(CASES) + 30)
    expected = {}
    for number, (index, value, column) in enumerate(CASES):
        rows[number] = mutate(rows[number], index, value)
        expected[number + 3] = column  # line 1: magic line, line 2: header
    # two rules on the NIRs: none at all, and an assuré principal without a NIR of their own
    assure = next(i for i in range(len(CASES), len(rows)) if rows[i][QUALITY] == "ASSURE")
    other = next(i for i in range(assure + 1, len(rows)) if rows[i][QUALITY] != "ASSURE")
    rows[assure][OD_NIR], rows[assure][NIR] = rows[assure][NIR], ""
    rows[other][NIR] = rows[other][OD_NIR] = ""
    expected[assure + 3] = expected[other + 3] = "nir"

    path = rights_file(rows)
    run, summary = run_import(path, insurer, tmp_path)

    assert run.status == ImportRun.Status.SUCCEEDED
    errors = read_errors(run)
    assert {line: column for line, column, _reason in errors} == expected
    assert len(errors) == len(expected)  # one report line per bad row
    assert summary.rejected == len(expected)
    assert summary.created == len(rows) - len(expected)
    assert summary.rows_read == len(rows)
    assert Beneficiary.objects.count() == len(rows) - len(expected)
    bad_values = {number + 3: value for number, (_i, value, _c) in enumerate(CASES)}
    for line, _column, reason in errors:
        assert reason
        value = bad_values.get(line, "")
        if len(value) >= 4 and value not in ("drop",):
            assert value not in reason, (line, reason)  # the reason never repeats the value
        assert rows[line - 3][ADHERENT] not in reason or not rows[line - 3][ADHERENT]
    text = report_text(run)
    for nir in nirs_of(rows) | {WRONG_KEY_NIR, "985077512345659"}:
        assert nir not in text
    assert run.counts["rejected"] == len(expected)


def test_reasons_say_what_is_expected(insurer, rows_for, rights_file, tmp_path):
    rows = rows_for(5)
    rows[0][NIR] = WRONG_KEY_NIR
    rows[1][BIRTH] = "1980-13-01"
    rows[2][PRODUCT] = "NOPE"
    rows[3][MEMBER] = "100"
    run, _summary = run_import(rights_file(rows), insurer, tmp_path)
    reasons = {line: (column, reason) for line, column, reason in read_errors(run)}
    assert reasons[3][0] == "nir" and "key" in reasons[3][1]
    assert reasons[4][0] == "birth_date" and "month" in reasons[4][1]
    assert reasons[5][0] == "product_code" and "unknown product" in reasons[5][1]
    assert reasons[6][0] == "member_number" and "1 to 99" in reasons[6][1]


def test_tolerated_variants_are_normalised(insurer, rows_for, rights_file, tmp_path):
    rows = rows_for(12)
    variants = [list(row) for row in rows]
    for row in variants:
        row[ADHERENT] = row[ADHERENT].lower()
        row[PRODUCT] = row[PRODUCT].lower()
        row[C_STATUS] = row[C_STATUS].upper()
        row[QUALITY] = row[QUALITY].lower()
        row[SEX] = row[SEX].lower()
        row[LAST] = f"  {row[LAST]} "
        row[RANK] = "" if row[RANK] == "1" else row[RANK]
        if row[NIR]:
            n = row[NIR]
            row[NIR] = f"{n[0]} {n[1:3]} {n[3:5]} {n[5:7]} {n[7:10]} {n[10:13]} {n[13:]}".lower()
    run, summary = run_import(rights_file(variants), insurer, tmp_path)
    assert (summary.created, summary.rejected) == (12, 0)
    stored = beneficiary_by_key(insurer)
    for row in rows:
        b = stored[(row[ADHERENT], int(row[MEMBER]))]
        assert b.last_name == row[LAST]
        assert b.sex == row[SEX]
        assert b.contract.product.code == row[PRODUCT]
        assert b.contract.status == row[C_STATUS]
        if row[NIR]:
            assert card_nir_matches(b, row[NIR])
    # the canonical spelling of the same rows is the same data: nothing to update
    _run, again = run_import(rights_file(rows), insurer, tmp_path)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 12)


def test_duplicate_rows_later_ones_rejected(insurer, rows_for, rights_file, tmp_path):
    rows = rows_for(10)
    copy = list(rows[1])
    changed = list(rows[1])
    changed[FIRST] = "Autre"
    rows += [copy, changed]
    run, summary = run_import(rights_file(rows), insurer, tmp_path)
    assert read_errors(run) == [
        (13, "member_number", "same adherent and member number as line 4"),
        (14, "member_number", "same adherent and member number as line 4"),
    ]
    assert (summary.created, summary.rejected, summary.rows_read) == (10, 2, 12)
    kept = beneficiary_by_key(insurer)[(rows[1][ADHERENT], int(rows[1][MEMBER]))]
    assert kept.first_name == rows[1][FIRST]


def test_duplicate_key_ignores_case_and_padding(insurer, rows_for, rights_file, tmp_path):
    rows = rows_for(4)
    twin = list(rows[0])
    twin[ADHERENT] = f" {twin[ADHERENT].lower()} "
    twin[MEMBER] = f"0{twin[MEMBER]}"
    rows.append(twin)
    run, summary = run_import(rights_file(rows), insurer, tmp_path)
    assert read_errors(run) == [(7, "member_number", "same adherent and member number as line 3")]
    assert summary.created == 4


def test_a_rejected_row_does_not_make_a_later_one_a_duplicate(insurer, rows_for, rights_file, tmp_path):
    rows = rows_for(6)
    bad = list(rows[2])
    bad[BIRTH] = "1980-13-01"
    rows.insert(2, bad)  # line 5 is bad, line 6 is the good row with the same key
    run, summary = run_import(rights_file(rows), insurer, tmp_path)
    assert read_errors(run) == [(5, "birth_date", "impossible month")]
    assert (summary.created, summary.rejected) == (6, 1)


def _family(rows, size):
    """Indices of the rows of the first contract with at least `size` members."""
    by_contract = {}
    for i, row in enumerate(rows):
        by_contract.setdefault(row[ADHERENT], []).append(i)
    return next(indices for indices in by_contract.values() if len(indices) >= size)


@pytest.mark.parametrize(
    ("index", "value"),
    [(PRODUCT, "OTHER"), (C_START, "2001-01-01"), (C_END, "2099-12-31"), (C_STATUS, "suspended")],
)
def test_contract_described_two_ways_rejects_all_its_rows(
    insurer, rows_for, rights_file, tmp_path, index, value
):
    rows = rows_for(30)
    family = _family(rows, 3)
    adherent = rows[family[0]][ADHERENT]
    if index == PRODUCT:
        value = next(code for code in ("ESS", "CONF", "PREM") if code != rows[family[0]][PRODUCT])
    if index == C_STATUS and rows[family[0]][C_STATUS] == value:
        value = "active"
    rows[family[1]][index] = value
    if index == C_START:
        rows[family[1]][COV_START] = max(rows[family[1]][COV_START], value)
    run, summary = run_import(rights_file(rows), insurer, tmp_path)
    errors = read_errors(run)
    assert [line for line, _c, _r in errors] == [i + 3 for i in family]
    for _line, column, reason in errors:
        assert column == "adherent_number"
        assert f"first at line {family[0] + 3}" in reason
    assert summary.rejected == len(family)
    assert summary.created == len(rows) - len(family)
    assert not Contract.objects.filter(adherent_number=adherent).exists()


def test_two_ways_only_counts_accepted_rows(insurer, rows_for, rights_file, tmp_path):
    """A row rejected for its own fault does not drag its contract's other rows down."""
    rows = rows_for(30)
    family = _family(rows, 2)
    rows[family[1]][PRODUCT] = "NOPE"
    run, summary = run_import(rights_file(rows), insurer, tmp_path)
    assert [(line, column) for line, column, _r in read_errors(run)] == [(family[1] + 3, "product_code")]
    assert summary.created == len(rows) - 1


def test_unknown_product_of_another_insurer(insurer, rows_for, rights_file, tmp_path):
    from rempart.registry.models import Insurer, Product

    other = Insurer.objects.create(amc_number="111111111", name="Other", kind="mutuelle")
    Product.objects.create(insurer=other, code="FOREIGN", label="Foreign")
    rows = rows_for(3)
    rows[0][PRODUCT] = "FOREIGN"
    run, summary = run_import(rights_file(rows), insurer, tmp_path)
    assert [(line, column) for line, column, _r in read_errors(run)] == [(3, "product_code")]
    assert summary.rejected == 1


def test_all_rows_bad_imports_nothing(insurer, rows_for, rights_file, tmp_path):
    rows = rows_for(8)
    for row in rows:
        row[SEX] = "?"
    run, summary = run_import(rights_file(rows), insurer, tmp_path)
    assert run.status == ImportRun.Status.SUCCEEDED
    assert (summary.rejected, summary.created) == (8, 0)
    assert not Contract.objects.exists()
