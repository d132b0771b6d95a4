"""The import's fast paths give exactly what the plain ones give.

The HMAC, the NIR check and row parsing were sped up for bulk imports, and big files are checked in
worker processes: each shortcut is compared here with the straightforward computation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.exceptions import ValidationError
from stdnum.fr import nir as stdnum_nir

from rempart.lib import identifiers
from rempart.lib.crypto import BLIND_INDEX_SIZE, FieldCipher, Keyring
from rempart.lib.identifiers import InvalidIdentifier, validate_nir
from rempart.registry import rights_format as fmt
from rempart.registry.rights_staging import STAGE_COLUMNS, RowStager, chunked, copy_binary
from rempart.registry.tests.support import NIR, read_errors, registry_state, run_import

FAST = settings(max_examples=300, deadline=None, database=None)


def _cipher(blind_key: bytes) -> FieldCipher:
    data_key = base64.b64encode(os.urandom(32)).decode()
    return FieldCipher(Keyring.parse(f"1:{data_key}", base64.b64encode(blind_key).decode()))


@pytest.mark.parametrize("key_size", [32, 64, 65, 200])
@given(value=st.text(max_size=40))
@FAST
def test_blind_index_and_fingerprint_are_the_standard_hmac(key_size, value):
    key = (hashlib.sha512(str(key_size).encode()).digest() * 4)[:key_size]
    c = _cipher(key)
    expected = hmac.new(key, b"nir\x00" + value.encode(), hashlib.sha256).digest()[:BLIND_INDEX_SIZE]
    assert c.blind_index("nir", value) == expected
    parts = ("a", value, "")
    expected = hmac.new(key, b"row\x00" + "\x1f".join(parts).encode(), hashlib.sha256).digest()
    assert c.fingerprint(*parts) == expected[:BLIND_INDEX_SIZE]
    assert c.fingerprint64(*parts) == int.from_bytes(expected[:8], "big", signed=True)


def _reference_nir(value: str) -> str:
    """validate_nir before its fast path: python-stdnum's validate() on every well-shaped value."""
    compact = value.replace(" ", "").upper()
    if len(compact) != 15:
        raise InvalidIdentifier("NIR: wrong length (15 characters expected, key included)")
    if not identifiers._NIR_SHAPE.match(compact):
        raise InvalidIdentifier("NIR: wrong format")
    try:
        return stdnum_nir.validate(compact)
    except ValidationError as exc:
        raise InvalidIdentifier(identifiers._reason(exc, "NIR")) from None


def _outcome(check, value: str) -> str:
    try:
        return "ok " + check(value)
    except InvalidIdentifier as exc:
        return f"refused: {exc}"


NIR_BODIES = st.from_regex(r"[1-8][0-9]{4}(2A|2B|[0-9]{2})[0-9]{6}", fullmatch=True)
NIRS = st.one_of(
    st.text("0123456789AB ", min_size=13, max_size=17),
    st.builds(lambda body: body + stdnum_nir.calc_check_digits(body), NIR_BODIES),
    st.builds(lambda body, key: body + key, NIR_BODIES, st.text("0123456789", min_size=2, max_size=2)),
    st.text(min_size=15, max_size=15),
)


@given(value=NIRS)
@FAST
def test_nir_fast_path_accepts_and_refuses_exactly_like_python_stdnum(value):
    assert _outcome(validate_nir, value) == _outcome(_reference_nir, value)


def test_row_caches_do_not_hide_errors():
    with pytest.raises(fmt.RowError, match="impossible date"):
        fmt._date("contract_start", "2021-02-30", required=True)
    assert fmt._date("contract_start", "2021-02-28", required=True).day == 28
    with pytest.raises(fmt.RowError, match="impossible date"):  # still refused after a good one
        fmt._date("contract_start", "2021-02-30", required=True)
    with pytest.raises(fmt.RowError):
        fmt._name("last_name", "R2D2")
    assert fmt._name("last_name", "Dupont") == "Dupont"
    with pytest.raises(fmt.RowError):
        fmt._name("last_name", "R2D2")


def test_binary_copy_tuples_have_every_column(insurer, rows_for):
    stager = RowStager(
        insurer.amc_number, {"ESS": 1, "CONF": 2, "PREM": 3}, _cipher(os.urandom(32)), binary=True
    )
    rows = rows_for(3)
    rows[1][0] = "000000000"  # rejected: another insurer's number
    errors, data = stager.stage([(3, rows[0]), (4, rows[1]), (5, rows[2])])
    assert [line for line, _column, _reason in errors] == [4]
    assert data.count(len(STAGE_COLUMNS).to_bytes(2, "big")) >= 3  # each tuple starts with its field count
    assert copy_binary([]) == b""


def test_worker_processes_import_exactly_like_this_process(insurer, rows_for, rights_file, tmp_path):
    rows = rows_for(60)
    rows[3][NIR] = rows[3][NIR][:-2] + ("00" if rows[3][NIR][-2:] != "00" else "01")  # wrong key
    rows[7][11] = "1980-13-01"  # impossible month
    rows[20] = list(rows[19])  # duplicate key
    path = rights_file(rows)

    run, summary = run_import(path, insurer, tmp_path, workers=2)
    errors = read_errors(run)
    counts, _digest = registry_state()
    assert summary.rejected == len(errors) >= 3
    assert [line for line, _c, _r in errors] == sorted(line for line, _c, _r in errors)

    # The same file again, in this process: nothing to change, and the same errors.
    run2, summary2 = run_import(path, insurer, tmp_path, workers=0)
    assert read_errors(run2) == errors
    assert (summary2.created, summary2.updated, summary2.rejected) == (0, 0, summary.rejected)
    assert registry_state()[0] == counts


def test_chunks_keep_order_and_size():
    rows = [(n, []) for n in range(12)]
    chunks = list(chunked(iter(rows), size=5))
    assert [len(c) for c in chunks] == [5, 5, 2]
    assert [r for c in chunks for r in c] == rows


def test_stager_reports_unknown_products_after_the_row_checks(insurer, rows_for):
    c = _cipher(os.urandom(32))
    rows = rows_for(2)
    stager = RowStager(insurer.amc_number, {}, c, binary=False)
    errors, staged = stager.stage([(3, rows[0]), (4, rows[1])])
    assert [(line, column) for line, column, _reason in errors] == [(3, "product_code"), (4, "product_code")]
    assert [row[1] for row in staged] == [1, 1]  # staged as rejected, keeping their keys


def test_contract_fingerprint_reuse_never_leaks_between_contracts_or_keys(insurer, rows_for):
    rows = rows_for(40)
    ciphers = [_cipher(os.urandom(32)), _cipher(os.urandom(32))]
    order = [*rows, *reversed(rows), *rows[::3]]
    for n, fields in enumerate(order):
        c = ciphers[n % 5 == 0]
        values = fmt.check_row(fields, insurer.amc_number, c)
        contract = (values[0], values[1], fields[3].strip(), fields[4].strip(), values[4])
        assert values[-2] == c.fingerprint64(*contract)


def test_file_refused_while_loading_leaves_nothing_and_the_connection_usable(
    insurer, rows_for, rights_file, tmp_path
):
    from rempart.registry.rights_import import FileRefused

    path = rights_file(rows_for(12), trailer=12)
    run_import(path, insurer, tmp_path)
    before = registry_state()
    big = rights_file(rows_for(6500, seed=8), trailer=6499)  # refused at the end, after a chunk was loaded
    with pytest.raises(FileRefused, match="truncated"):
        run_import(big, insurer, tmp_path)
    assert registry_state() == before
    _run, summary = run_import(path, insurer, tmp_path)  # the connection still works
    assert summary.unchanged == 12
