"""Property-based fuzzing of rights rows (hypothesis): no crash, no partial write, every bad row reported."""

from __future__ import annotations

import itertools
import re

import pytest
from django.db import transaction
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from rempart.lib.crypto import field_cipher
from rempart.registry import rights_format as fmt
from rempart.registry.models import Beneficiary, ImportRun
from rempart.registry.rights_import import FileRefused
from rempart.registry.tests.support import (
    ADHERENT,
    FIRST,
    MEMBER,
    beneficiary_by_key,
    read_errors,
    registry_state,
    run_import,
)

BASE_ROWS = 12  # in the registry before each example
FILE_ROWS = 18  # offered in each example: the base rows and 6 new ones, then mutated

FUZZ = settings(
    max_examples=80,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

NIR_LIKE = st.builds(
    lambda body, key: body + key,
    st.text("0123456789", min_size=13, max_size=13),
    st.text("0123456789", min_size=2, max_size=2),
)
TOKENS = st.sampled_from(
    [
        "", " ", "ASSURE", "enfant", "CONJOINT", "AUTRE", "M", "f", "active", "SUSPENDED", "terminated",
        "ESS", "conf", "PREM", "NOPE", "0000000001", "0000000002", "1", "99", "100", "0", "01", "²", "٣",
        "1975-00-00", "1975-04-00", "2020-02-30", "2019-01-01", "2030-12-31", "0001-01-01", "9999-12-31",
        "185077512345659", "1 85 07 75 123 456 59", "185077512345600", "255082A01234575", "#end", "#end;5",
        "#rempart-rights", "NULL", "null", "\x00", "Jean-Pierre", "D'Artagnan", "Élodie", "Ñúñez", "李",
    ]
)  # fmt: skip
SEPARATORS = st.text(st.sampled_from(';"\r\n \t\\'), min_size=1, max_size=4)
VALUES = st.one_of(
    TOKENS,
    st.text(max_size=25),  # any Unicode text (no surrogates)
    SEPARATORS,
    st.builds(lambda a, sep, b: a + sep + b, TOKENS, SEPARATORS, TOKENS),
    st.text("0123456789-", max_size=16),
    st.sampled_from(
        ["²", "1²", "③", "٣", "１", "⁰", "Ⅻ", "½", "𝟗", "߀"]
    ),  # digits of other kinds and scripts
    st.text(st.characters(categories=("Nd", "No", "Nl")), min_size=1, max_size=3),
    st.text(st.characters(categories=("Zs", "Cc", "Cf", "Mn")), min_size=1, max_size=3),  # odd blanks, marks
    st.integers(-10, 1000).map(str),
    NIR_LIKE,
    st.builds(lambda c, n: c * n, st.sampled_from(["a", "é", "9", "-", "李", " "]), st.integers(55, 400)),
)
_NUMBERS = st.sampled_from(["0", "100", "01", "²", "1²", "٣", "１", "①", "-1", "+1", "1.0", "1e1", " 2 "])
_DATES = st.sampled_from(
    ["1975-00-00", "1975-04-00", "1975-00-04", "2020-02-30", "20200101", "2020-W01-1", "٢٠٢٠-٠١-٠١",
     "2020-01-01T00:00", "0000-01-01", "0001-01-01", "9999-12-31", "2020-1-1", "2020-01-01 "]
)  # fmt: skip
_NIRS = st.one_of(
    NIR_LIKE,
    st.sampled_from(
        ["185077512345659", "1 85 07 75 123 456 59", "255082a01234575", "2550820A1234575", "1850775123456"]
    ),
)
NEAR_MISSES = {  # per column, values close to valid ones: where parsers slip
    0: st.sampled_from(["046709591 ", "46709591", "０46709591"]),
    1: st.sampled_from(["0000000001", "0000000002", " 0000000003", "ab-12", "A" * 20, "A" * 21, "-1", "ı"]),
    2: st.sampled_from(["ESS", "conf", "PREM ", "NOPE", "E_S-S", "ß"]),
    3: _DATES, 4: _DATES, 15: _DATES, 16: _DATES,
    5: st.sampled_from(["ACTIVE", "Suspended", "terminé", "actıve"]),
    6: _NUMBERS, 12: _NUMBERS,
    7: st.sampled_from(["assure", "ENFANT ", "Conjoint", "AUTRE", "autre ayant droit"]),
    8: st.sampled_from(["O'Neil", "Le Gall", "L" * 60, "L" * 61, "Zoë", "A.", "'", "-", "Dupont\u00a0Durand"]),
    9: st.sampled_from(["Jean-Pierre", "Ève", "X Æ A-12", "李", "ǅ", "a\u0301"]),
    10: st.sampled_from(["m", "F ", "MF", "W"]),
    11: _DATES,
    13: _NIRS, 14: _NIRS,
}  # fmt: skip
MUTATION = st.one_of(
    st.tuples(st.integers(0, FILE_ROWS - 1), st.integers(0, len(fmt.COLUMNS) - 1), VALUES),
    st.integers(0, len(fmt.COLUMNS) - 1).flatmap(
        lambda column: st.tuples(st.integers(0, FILE_ROWS - 1), st.just(column), NEAR_MISSES[column])
    ),
    st.tuples(st.integers(0, FILE_ROWS - 1), st.sampled_from(["drop", "add"]), st.just("")),
)

_SPECIAL = re.compile(r'[;"\r\n]')
_BREAK = re.compile(r"\r\n|\r|\n")
_files = itertools.count()


def quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if _SPECIAL.search(value) else value


def apply(rows, mutations):
    rows = [list(row) for row in rows]
    touched = set()
    for index, column, value in mutations:
        touched.add(index)
        if column == "drop":
            rows[index] = rows[index][:-1] or [""]
        elif column == "add":
            rows[index] = [*rows[index], value]
        elif column < len(rows[index]):
            rows[index][column] = value
    return rows, touched


def write(tmp_path, insurer, rows, quoted, damage=None):
    """The file, and for each row the (first, last) physical line it spans when quoted."""
    text = [f"{fmt.magic_line(insurer.amc_number)}\n{fmt.header_line()}\n"]
    spans, line = [], 3
    for row in rows:
        record = ";".join(quote(v) if quoted else v for v in row)
        breaks = len(_BREAK.findall(record))
        spans.append((line, line + breaks))
        line += breaks + 1
        text.append(record + "\n")
    if damage != "no trailer":
        text.append(fmt.trailer_line(len(rows) + (damage == "count")) + "\n")
    data = "".join(text).encode("utf-8")
    if damage == "bad byte":
        data = data[: len(data) // 2] + b"\xe9\xff" + data[len(data) // 2 :]
    path = tmp_path / f"fuzz-{next(_files)}.csv"
    path.write_bytes(data)
    return path, spans


def claimed_adherents(original, mutated):
    """Every contract a mutated row may now speak for: a clean row of another contract is independent."""
    claims = {original[ADHERENT]}
    if len(mutated) > ADHERENT:
        value = mutated[ADHERENT]
        claims |= {value.strip().upper(), "".join(value.split()).upper(), value.upper(), value}
    return claims


@pytest.fixture
def base(insurer, rows_for, rights_file, tmp_path):
    rows = rows_for(FILE_ROWS)
    run_import(rights_file(rows[:BASE_ROWS]), insurer, tmp_path)
    return rows, registry_state()


@FUZZ
@given(
    mutations=st.lists(MUTATION, max_size=8),
    quoted=st.booleans(),
    mode=st.sampled_from(["delta", "full"]),
    force=st.booleans(),
    damage=st.sampled_from([None] * 7 + ["count", "no trailer", "bad byte"]),
)
@example(
    mutations=[(3, 6, "²"), (5, 12, "1²"), (9, 1, "ı")], quoted=True, mode="full", force=False, damage=None
)
@example(
    mutations=[(0, 0, "#end"), (4, 13, "185077512345600")],
    quoted=False,
    mode="delta",
    force=True,
    damage=None,
)
def test_fuzzed_rows(base, insurer, tmp_path, mutations, quoted, mode, force, damage):
    rows, state = base
    offered, touched = apply(rows, mutations)
    path, spans = write(tmp_path, insurer, offered, quoted, damage)
    with transaction.atomic():
        check_import(
            insurer, tmp_path, rows, offered, touched, path, spans, quoted, mode, force, state, damage
        )
        transaction.set_rollback(True)


def check_import(insurer, tmp_path, rows, offered, touched, path, spans, quoted, mode, force, state, damage):
    try:
        run, summary = run_import(path, insurer, tmp_path, mode=mode, force=force)
        assert damage is None or not quoted, "a damaged file was imported"
    except FileRefused:
        event("file refused")
        # refused as a whole: nothing changed, the refusal recorded
        assert registry_state() == state
        assert ImportRun.objects.order_by("-pk").first().status == ImportRun.Status.REFUSED
        return
    assert run.status == ImportRun.Status.SUCCEEDED
    event(f"imported, {'some' if summary.rejected else 'no'} rows rejected")
    assert summary.rows_read == summary.created + summary.updated + summary.unchanged + summary.rejected
    accepted = summary.rows_read - summary.rejected
    assert Beneficiary.objects.count() == state[0]["Beneficiary"] + summary.created

    errors = read_errors(run)
    assert len(errors) == summary.rejected  # one report line per rejected row
    lines = [line for line, _column, _reason in errors]
    assert len(set(lines)) == len(lines)
    for _line, column, reason in errors:
        assert column in (*fmt.COLUMNS, "(row)")
        assert reason
        assert not re.search(r"\d{6}", reason)  # never a NIR, nor any long number from the file

    if quoted:  # the file's structure is intact: we know where every row is
        assert summary.rows_read == len(offered)
        for line in lines:
            assert any(first <= line <= last for first, last in spans), line
        claims = set().union(*(claimed_adherents(rows[i], offered[i]) for i in touched)) if touched else set()
        clean = [i for i in range(len(rows)) if i not in touched and rows[i][ADHERENT] not in claims]
        stored = beneficiary_by_key(insurer)
        for i in clean:
            first, last = spans[i]
            assert not any(first <= line <= last for line in lines), f"clean row {i} rejected"
            assert stored[(rows[i][ADHERENT], int(rows[i][MEMBER]))].first_name == rows[i][FIRST]

    # idempotent: the same file again changes nothing
    before = registry_state()
    _run, again = run_import(path, insurer, tmp_path, mode=mode, force=True)
    assert (again.created, again.updated, again.ended, again.contracts_ended) == (0, 0, 0, 0)
    assert again.unchanged == accepted
    assert again.rejected == summary.rejected
    assert registry_state() == before


@settings(max_examples=200, deadline=None, database=None)
@given(
    st.lists(st.one_of(VALUES, NIR_LIKE), min_size=15, max_size=19),
    st.lists(st.tuples(st.integers(0, 16), VALUES), max_size=4),
)
def test_parse_row_only_raises_row_errors(fields, overrides):
    """Random rows, and valid rows with a few random fields: a RowError naming a column, or a row."""
    cipher = field_cipher()
    valid = "046709591;0000000001;ESS;2020-10-01;;active;1;ASSURE;Vasseur;Antoine;M;1981-03-08;1;181037533945068;;2020-10-01;".split(
        ";"
    )
    for candidate in (fields, valid):
        candidate = list(candidate)
        for index, value in overrides:
            if index < len(candidate):
                candidate[index] = value
        try:
            row = fmt.parse_row(candidate, "046709591", cipher)
        except fmt.RowError as exc:
            assert exc.column in (*fmt.COLUMNS, "(row)")
            assert not re.search(r"\d{6}", exc.reason)
            if exc.column != "(row)":
                value = candidate[fmt.COLUMNS.index(exc.column)].strip()
                if len(value) >= 6 and not value.replace(" ", "").isalpha():
                    assert value not in str(exc)  # the reason never repeats the value
        else:
            assert 1 <= row.member_number <= 99
            assert row.nir_index or row.od_nir_index
            assert len(row.adherent_number) <= 20 and len(row.last_name) <= 60
        key = fmt.row_key(candidate)  # readable from any row, good or bad
        assert key[1] is None or 1 <= key[1] <= 99
