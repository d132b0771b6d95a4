"""The products file: offers and their per-domain guarantees, versioned by effective date."""

from __future__ import annotations

import datetime as dt

import pytest

from rempart.registry import products_import as pfmt
from rempart.registry import synthetic
from rempart.registry.models import CareDomain, Guarantee, Insurer, Product
from rempart.registry.products_import import import_products
from rempart.registry.rights_import import FileRefused
from rempart.registry.tests.support import registry_state

GOOD_ROW = ["ESS", "Essentiel", "O", "PHAR", "2020-01-01", "100", "100", "", "N", "", "synthetic"]


@pytest.fixture
def bare_insurer(db) -> Insurer:
    return Insurer.objects.create(amc_number="123456789", name="Mutuelle Test", kind="mutuelle")


def products_file(tmp_path, rows, *, amc="123456789", trailer=None, header=None, magic=None):
    lines = [
        magic if magic is not None else f"{pfmt.MAGIC};{pfmt.VERSION};{amc}",
        header if header is not None else ";".join(pfmt.COLUMNS),
        *(";".join(row) for row in rows),
    ]
    if trailer is not False:
        lines.append(f"#end;{len(rows) if trailer is None else trailer}")
    path = tmp_path / f"products-{len(list(tmp_path.iterdir()))}.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def row(**changes) -> list[str]:
    values = dict(zip(pfmt.COLUMNS, GOOD_ROW, strict=True))
    values.update(changes)
    return [values[c] for c in pfmt.COLUMNS]


def test_synthetic_products_file_imports_every_row(bare_insurer, tmp_path):
    path = tmp_path / "products.csv"
    path.write_text(synthetic.products_file_text(bare_insurer.amc_number), encoding="utf-8")
    summary = import_products(path, bare_insurer)
    assert summary.errors == []
    levels = len(synthetic.PRODUCT_LEVELS)
    domains = len(CareDomain.values)
    assert summary.rows_read == levels * domains
    assert summary.products_created == levels
    assert summary.guarantees_written == levels * domains
    assert Product.objects.filter(insurer=bare_insurer).count() == levels
    assert Guarantee.objects.filter(product__insurer=bare_insurer).count() == levels * domains
    ess = Product.objects.get(insurer=bare_insurer, code="ESS")
    assert ess.responsible and ess.label == "Essentiel"
    premium = Product.objects.get(insurer=bare_insurer, code="PREM")
    assert not premium.responsible
    opti = ess.guarantee_for("OPTI", dt.date(2024, 1, 1))
    assert opti.pec_required and opti.tp_code == "PEC"
    assert opti.ceilings["simple_simple_max"] == 42000  # 420.00 € in cents
    assert opti.ceilings["frame_max"] == 10000
    assert ess.guarantee_for("PHAR", dt.date(2024, 1, 1)).tiers_payant_allowed

    again = import_products(path, bare_insurer)  # idempotent
    assert (again.products_created, again.guarantees_written, again.unchanged) == (0, 0, levels * domains)


def test_ceilings_amounts_and_rates(bare_insurer, tmp_path):
    rows = [
        row(domain="OPTI", ceilings="frame_max=100|simple_simple_max=420,5|complex_complex_max= 700.05 "),
        row(domain="AUDI", ceilings="per_ear_max=1700"),
        row(domain="DENT", ceilings="prosthesis_max=0.01|yearly_max=1000.00"),
        row(domain="TRAN", rate_percent="", amount_eur="12,30"),
        row(domain="HOSP", rate_percent="300", tp_code="sp"),
    ]
    summary = import_products(products_file(tmp_path, rows), bare_insurer)
    assert summary.errors == []
    product = Product.objects.get(insurer=bare_insurer, code="ESS")
    on = dt.date(2021, 1, 1)
    assert product.guarantee_for("OPTI", on).ceilings == {
        "frame_max": 10000,
        "simple_simple_max": 42050,
        "complex_complex_max": 70005,
    }
    assert product.guarantee_for("AUDI", on).ceilings == {"per_ear_max": 170000}
    assert product.guarantee_for("DENT", on).ceilings == {"prosthesis_max": 1, "yearly_max": 100000}
    transport = product.guarantee_for("TRAN", on)
    assert (transport.amount_cents, transport.rate_percent) == (1230, None)
    hospital = product.guarantee_for("HOSP", on)
    assert (hospital.rate_percent, hospital.tp_code) == (300, "SP")
    assert not hospital.tiers_payant_allowed


def test_guarantee_for_returns_the_version_in_force(bare_insurer, tmp_path):
    rows = [
        row(domain="OPTI", effective_from="2020-01-01", rate_percent="100", ceilings="frame_max=100"),
        row(domain="OPTI", effective_from="2025-01-01", rate_percent="150", ceilings="frame_max=120"),
        row(domain="OPTI", effective_from="2022-07-01", rate_percent="125", ceilings="frame_max=110"),
    ]
    assert import_products(products_file(tmp_path, rows), bare_insurer).errors == []
    product = Product.objects.get(insurer=bare_insurer, code="ESS")
    assert product.guarantee_for("OPTI", dt.date(2019, 12, 31)) is None
    assert product.guarantee_for("OPTI", dt.date(2020, 1, 1)).rate_percent == 100
    assert product.guarantee_for("OPTI", dt.date(2022, 6, 30)).rate_percent == 100
    assert product.guarantee_for("OPTI", dt.date(2022, 7, 1)).rate_percent == 125
    assert product.guarantee_for("OPTI", dt.date(2024, 12, 31)).ceilings == {"frame_max": 11000}
    assert product.guarantee_for("OPTI", dt.date(2025, 1, 1)).rate_percent == 150
    assert product.guarantee_for("OPTI", dt.date(2040, 1, 1)).rate_percent == 150
    assert product.guarantee_for("PHAR", dt.date(2040, 1, 1)) is None


def test_new_version_and_changed_terms(bare_insurer, tmp_path):
    import_products(products_file(tmp_path, [row(rate_percent="100")]), bare_insurer)
    summary = import_products(
        products_file(
            tmp_path, [row(rate_percent="100"), row(rate_percent="120", effective_from="2026-01-01")]
        ),
        bare_insurer,
    )
    assert (summary.unchanged, summary.guarantees_written) == (1, 1)
    summary = import_products(products_file(tmp_path, [row(rate_percent="90")]), bare_insurer)
    assert (summary.unchanged, summary.guarantees_written) == (0, 1)
    product = Product.objects.get(insurer=bare_insurer, code="ESS")
    assert product.guarantee_for("PHAR", dt.date(2025, 1, 1)).rate_percent == 90
    assert product.guarantee_for("PHAR", dt.date(2026, 1, 1)).rate_percent == 120
    assert product.guarantees.count() == 2


BAD_ROWS = [
    (row(product_code=""), "product_code"),
    (row(product_code="P" * 21), "product_code"),
    (row(label=""), "label"),
    (row(responsible="peut-être"), "responsible"),
    (row(domain="XXXX"), "domain"),
    (row(domain=""), "domain"),
    (row(effective_from="2020-13-01"), "effective_from"),
    (row(effective_from=""), "effective_from"),
    (row(tp_code=""), "tp_code"),
    (row(tp_code="ABCDEFGHI"), "tp_code"),
    (row(rate_percent="abc"), "rate_percent"),
    (row(rate_percent="-5"), "rate_percent"),
    (row(rate_percent="1001"), "rate_percent"),
    (row(rate_percent="\u00b2"), "rate_percent"),
    (row(amount_eur="abc"), "amount_eur"),
    (row(amount_eur="-1"), "amount_eur"),
    (row(amount_eur="1.234"), "amount_eur"),
    (row(amount_eur="NaN"), "amount_eur"),
    (row(amount_eur="Infinity"), "amount_eur"),
    (row(amount_eur="1e30"), "amount_eur"),
    (row(pec_required="peut-être"), "pec_required"),
    (row(ceilings="frame_max=100"), "ceilings"),  # PHAR has no ceilings
    (row(domain="OPTI", ceilings="unknown_key=100"), "ceilings"),
    (row(domain="OPTI", ceilings="frame_max"), "ceilings"),
    (row(domain="OPTI", ceilings="frame_max=cent"), "ceilings"),
    (row(domain="OPTI", ceilings="frame_max=snan"), "ceilings"),
    (row(domain="DENT", ceilings="yearly_max=100|"), "ceilings"),
    (GOOD_ROW[:-1], "(row)"),
    ([*GOOD_ROW, "extra"], "(row)"),
]


def test_bad_rows_are_reported_with_line_and_column(bare_insurer, tmp_path):
    good = [row(domain="PHAR"), row(product_code="CONF", domain="DENT", ceilings="yearly_max=500")]
    rows = [good[0]] + [r for r, _column in BAD_ROWS] + [good[1]]
    summary = import_products(products_file(tmp_path, rows), bare_insurer)
    expected = [(line, column) for line, (_r, column) in enumerate(BAD_ROWS, start=4)]
    assert [(line, column) for line, column, _reason in summary.errors] == expected
    assert all(reason for _l, _c, reason in summary.errors)
    assert summary.rows_read == len(rows)
    # the good rows went in despite the bad ones
    assert summary.guarantees_written == 2
    assert set(Product.objects.filter(insurer=bare_insurer).values_list("code", flat=True)) == {"ESS", "CONF"}
    assert "rejetées            " + str(len(BAD_ROWS)) in summary.as_text()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"magic": "#rempart-rights;1;123456789"}, "line 1"),
        ({"magic": "#rempart-products;2;123456789"}, "line 1"),
        ({"amc": "987654321"}, "another insurer"),
        ({"header": "product_code;label"}, "header"),
        ({"header": ";".join(reversed(pfmt.COLUMNS))}, "header"),
        ({"trailer": False}, "truncated"),
        ({"trailer": 5}, "truncated"),
        ({"trailer": "x"}, "truncated"),
    ],
)
def test_whole_file_refusals_change_nothing(insurer, tmp_path, kwargs, match):
    amc = kwargs.pop("amc", insurer.amc_number)
    magic = kwargs.pop("magic", None)
    if magic:
        magic = magic.replace("123456789", insurer.amc_number)
    path = products_file(
        tmp_path, [row(rate_percent="5"), row(domain="MEDE")], amc=amc, magic=magic, **kwargs
    )
    before = registry_state()
    with pytest.raises(FileRefused, match=match):
        import_products(path, insurer)
    assert registry_state() == before


def test_not_utf8_is_refused(insurer, tmp_path):
    path = products_file(tmp_path, [row(label="Référence")], amc=insurer.amc_number)
    path.write_bytes(path.read_text(encoding="utf-8").encode("latin-1"))
    before = registry_state()
    with pytest.raises(FileRefused, match="UTF-8"):
        import_products(path, insurer)
    assert registry_state() == before


def test_unterminated_quote_or_huge_field_is_refused_not_a_crash(insurer, tmp_path):
    path = products_file(tmp_path, [row(label='"Essentiel')], amc=insurer.amc_number)
    with pytest.raises(FileRefused):
        import_products(path, insurer)
    path = products_file(tmp_path, [row(source="x" * 200_000)], amc=insurer.amc_number)
    with pytest.raises(FileRefused):
        import_products(path, insurer)


def test_products_are_per_insurer(insurer, bare_insurer, tmp_path):
    import_products(products_file(tmp_path, [row(label="Autre libellé")]), bare_insurer)
    ours = Product.objects.get(insurer=insurer, code="ESS")
    theirs = Product.objects.get(insurer=bare_insurer, code="ESS")
    assert ours.pk != theirs.pk
    assert ours.label == "Essentiel" and theirs.label == "Autre libellé"


def test_strict_dates_codes_and_duplicates_in_products_files(tmp_path, db):
    from rempart.registry import products_import as pi
    from rempart.registry.models import Insurer

    insurer = Insurer.objects.create(amc_number="111111111", name="X", kind="mutuelle")
    header = ";".join(pi.COLUMNS)
    good = "ESS;Essentiel;O;PHAR;2020-01-01;100;100;;N;;src"
    rows = [
        good,
        "ESS PLUS;Essentiel;O;PHAR;2020-01-01;100;100;;N;;src",
        "ESS;Essentiel;O;MEDE;20200101;100;100;;N;;src",
        good,
    ]
    path = tmp_path / "p.csv"
    path.write_text(
        "\n".join([f"{pi.MAGIC};{pi.VERSION};111111111", header, *rows, f"#end;{len(rows)}"]) + "\n"
    )
    summary = pi.import_products(path, insurer)
    assert [(line, column) for line, column, _ in summary.errors] == [
        (4, "product_code"),
        (5, "effective_from"),
        (6, "effective_from"),
    ]
    assert summary.errors[2][2] == {"code": "duplicate_guarantee", "first": 3}
    assert summary.guarantees_written == 1
