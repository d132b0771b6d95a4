"""The LPP catalogue file: the shipped data, look-ups by date, and every refusal with its line and column."""

import datetime as dt
import hashlib

import pytest

from rempart.authorizations.catalogue import (
    COLUMNS,
    DEFAULT_PATH,
    CatalogueError,
    default_catalogue,
    load_catalogue,
    parse_catalogue,
)

HEADER = ";".join(COLUMNS)
GOOD = {
    "lpp_code": "2290200",
    "label": "Verre simple classe A",
    "domain": "OPTI",
    "item": "lens",
    "class": "A",
    "complexity": "simple",
    "base_remboursement_eur": "16.25",
    "price_limit_eur": "32.50",
    "age_min": "16",
    "age_max": "",
    "effective_from": "2020-01-01",
    "effective_to": "",
    "source": "test",
}


def row(**changes: str) -> str:
    return ";".join({**GOOD, **changes}[c] for c in COLUMNS)


def text(*rows: str, trailer: int | None = None) -> bytes:
    count = len(rows) if trailer is None else trailer
    return "\n".join(["#rempart-lpp;1", HEADER, *rows, f"#end;{count}", ""]).encode("utf-8")


def refused(data: bytes) -> list[tuple[int, str, str]]:
    with pytest.raises(CatalogueError) as caught:
        parse_catalogue(data, "test.csv")
    return caught.value.problems


# ---------------------------------------------------------------------------------------------- shipped file


def test_the_shipped_catalogue_loads_and_is_versioned_by_its_hash():
    catalogue = default_catalogue()
    assert len(catalogue) == 24
    assert catalogue.data_version == hashlib.sha256(DEFAULT_PATH.read_bytes()).hexdigest()
    assert len(catalogue.data_version) <= 80  # Pec.data_version


def test_the_shipped_catalogue_covers_both_domains_classes_and_age_bands():
    today = dt.date(2026, 12, 1)
    current = [entry for entry in default_catalogue() if entry.valid_on(today)]
    kinds = {(e.domain, e.item, e.lpp_class, e.complexity, e.age_min) for e in current}
    for cls in "AB":
        for age in (0, 16):
            assert ("OPTI", "frame", cls, None, age) in kinds
            for complexity in ("simple", "complex", "very_complex"):
                assert ("OPTI", "lens", cls, complexity, age) in kinds
    for cls in ("I", "II"):
        for age in (0, 20):
            assert ("AUDI", "device", cls, None, age) in kinds
    assert all(e.source for e in default_catalogue())
    assert all("verify" in e.source or "historical" in e.source for e in default_catalogue())


def test_the_figures_of_the_domain_reference():
    catalogue, day = default_catalogue(), dt.date(2026, 12, 1)
    frame = catalogue.lookup("2290100", day)
    assert (frame.price_limit_cents, frame.full_cover) == (3000, True)
    hearing = catalogue.lookup("2390100", day)
    assert (hearing.base_cents, hearing.price_limit_cents) == (40000, 95000)
    assert catalogue.lookup("2390111", day).base_cents == 140000
    assert catalogue.lookup("2290300", day).base_cents == 5
    assert catalogue.lookup("2290300", day).price_limit_cents is None


def test_lookup_by_date_finds_the_version_in_force():
    catalogue = default_catalogue()
    assert catalogue.lookup("2390100", dt.date(2020, 12, 31)).price_limit_cents == 110000
    assert catalogue.lookup("2390100", dt.date(2021, 1, 1)).price_limit_cents == 95000
    assert catalogue.lookup("2390100", dt.date(2019, 12, 31)) is None
    assert [v.effective_from.year for v in catalogue.versions("2390100")] == [2020, 2021]


def test_an_expired_code_is_known_but_not_found():
    catalogue = default_catalogue()
    assert catalogue.lookup("2261874", dt.date(2019, 12, 31)).base_cents == 1204
    assert catalogue.lookup("2261874", dt.date(2020, 1, 1)) is None
    assert "2261874" in catalogue and catalogue.versions("2261874")
    assert catalogue.lookup("1234567", dt.date(2026, 1, 1)) is None and catalogue.versions("1234567") == ()


def test_load_catalogue_reads_a_path(tmp_path):
    path = tmp_path / "lpp.csv"
    path.write_bytes(text(row()))
    catalogue = load_catalogue(path)
    assert len(catalogue) == 1 and catalogue.name == "lpp.csv"
    assert catalogue.data_version == hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------- syntax


def test_bom_crlf_blank_lines_quotes_and_decimal_commas_are_read():
    data = "\ufeff" + "\r\n".join(
        [
            "#rempart-lpp;1",
            HEADER,
            "",
            row(label='"Verre; simple"', base_remboursement_eur="16,25"),
            ";;;;",
            "#end;1",
            "",
            "",
        ]
    )
    entry = parse_catalogue(data.encode("utf-8")).lookup("2290200", dt.date(2024, 1, 1))
    assert entry.label == "Verre; simple" and entry.base_cents == 1625 and entry.line == 4


@pytest.mark.parametrize(
    ("data", "line", "words"),
    [
        (b"\xff\xfe#rempart", 0, "UTF-8"),
        (b"#rempart-products;1;123\n", 1, "not an LPP catalogue"),
        (b"#rempart-lpp;2\n" + HEADER.encode() + b"\n#end;0\n", 1, "not an LPP catalogue"),
        (b"#rempart-lpp;1\nlpp_code;label\n#end;0\n", 2, "wrong header"),
        (b"#rempart-lpp;1\n", 2, "wrong header"),
        (text(row()).replace(b"#end;1\n", b""), 0, "truncated"),
        (text(row(), row(lpp_code="2290201"), trailer=3), 5, "does not announce 2 rows"),
        (text(row()).replace(b"#end;1", b"#end"), 4, "does not announce 1 rows"),
        (text(row(label='"unclosed')), 0, "quoting"),
    ],
)
def test_a_malformed_file_is_refused_as_a_whole(data, line, words):
    problems = refused(data)
    assert len(problems) == 1 and problems[0][0] == line and words in problems[0][2]


# ---------------------------------------------------------------------------------------------- rows


@pytest.mark.parametrize(
    ("changes", "column", "words"),
    [
        ({"lpp_code": "229020"}, "lpp_code", "7 digits"),
        ({"lpp_code": "229020A"}, "lpp_code", "7 digits"),
        ({"label": ""}, "label", "missing"),
        ({"label": "x" * 201}, "label", "200"),
        ({"domain": "DENT"}, "domain", "OPTI or AUDI"),
        ({"item": "device"}, "item", "lens, frame"),
        ({"domain": "AUDI", "item": "lens"}, "item", "device"),
        ({"class": "I"}, "class", "A or B"),
        ({"domain": "AUDI", "item": "device", "class": "A", "complexity": ""}, "class", "I or II"),
        ({"complexity": ""}, "complexity", "for a lens"),
        ({"complexity": "hard"}, "complexity", "for a lens"),
        ({"item": "frame"}, "complexity", "only for lenses"),
        ({"base_remboursement_eur": ""}, "base_remboursement_eur", "missing"),
        ({"base_remboursement_eur": "abc"}, "base_remboursement_eur", "amount in euros"),
        ({"base_remboursement_eur": "NaN"}, "base_remboursement_eur", "amount in euros"),
        ({"base_remboursement_eur": "-1"}, "base_remboursement_eur", "positive"),
        ({"base_remboursement_eur": "1.005"}, "base_remboursement_eur", "2 decimals"),
        ({"price_limit_eur": ""}, "price_limit_eur", "required for class A"),
        ({"price_limit_eur": "10.00"}, "price_limit_eur", "lower than the base"),
        ({"class": "B"}, "price_limit_eur", "only for classes A and I"),
        ({"age_min": ""}, "age_min", "missing"),
        ({"age_min": "-1"}, "age_min", "whole number"),
        ({"age_max": "200"}, "age_max", "whole number"),
        ({"age_min": "16", "age_max": "15"}, "age_max", "lower than age_min"),
        ({"effective_from": ""}, "effective_from", "missing"),
        ({"effective_from": "01/01/2020"}, "effective_from", "YYYY-MM-DD"),
        ({"effective_from": "2020-02-30"}, "effective_from", "impossible"),
        ({"effective_to": "2019-12-31"}, "effective_to", "before effective_from"),
        ({"source": ""}, "source", "where the figures come from"),
    ],
)
def test_a_bad_row_is_reported_with_its_line_and_column(changes, column, words):
    problems = refused(text(row(), row(**{"lpp_code": "2290201", **changes})))
    assert len(problems) == 1
    line, got_column, reason = problems[0]
    assert (line, got_column) == (4, column) and words in reason


def test_a_row_with_the_wrong_number_of_fields():
    assert refused(text(row() + ";extra")) == [(3, "(row)", "14 fields instead of 13")]


def test_versions_of_a_code_must_not_overlap():
    first = row(effective_to="2020-12-31")
    assert len(parse_catalogue(text(first, row(effective_from="2021-01-01"))).versions("2290200")) == 2
    problems = refused(text(first, row(effective_from="2020-12-31")))
    assert problems == [(4, "effective_from", "overlaps the period of line 3 for the same code")]
    problems = refused(text(row(), row(effective_from="2030-01-01")))
    assert problems == [(4, "effective_from", "overlaps the period of line 3 for the same code")]


def test_every_bad_row_is_listed_and_the_message_names_them():
    with pytest.raises(CatalogueError) as caught:
        parse_catalogue(text(row(lpp_code="1"), row(domain="X"), row(lpp_code="2290201")), "lpp.csv")
    assert [p[:2] for p in caught.value.problems] == [(3, "lpp_code"), (4, "domain")]
    assert "lpp.csv" in str(caught.value) and "line 3, lpp_code: 7 digits expected" in str(caught.value)


def test_codes_are_found_on_their_first_and_last_day_only():
    catalogue = parse_catalogue(text(row(effective_from="2021-01-01", effective_to="2021-06-30")))
    assert catalogue.lookup("2290200", dt.date(2021, 1, 1)) is not None
    assert catalogue.lookup("2290200", dt.date(2021, 6, 30)) is not None
    assert catalogue.lookup("2290200", dt.date(2021, 7, 1)) is None
    assert catalogue.lookup("2290200", dt.date(2020, 12, 31)) is None


def test_age_bands():
    entry = parse_catalogue(text(row(age_min="0", age_max="15"))).lookup("2290200", dt.date(2024, 1, 1))
    assert entry.fits_age(15, 15) and entry.fits_age(15, 16) and not entry.fits_age(16, 16)
    adult = parse_catalogue(text(row())).lookup("2290200", dt.date(2024, 1, 1))
    assert adult.fits_age(15, 16) and not adult.fits_age(15, 15) and adult.fits_age(90, 90)
