"""A rights file wrong as a whole is refused before anything changes, and the refusal is recorded."""

from __future__ import annotations

import io

import pytest

from rempart.registry import rights_format as fmt
from rempart.registry.models import Beneficiary, ImportRun
from rempart.registry.rights_import import FileRefused
from rempart.registry.tests.support import FIRST, LAST, registry_state, run_import

ROWS = 40


@pytest.fixture
def loaded(insurer, rows_for, rights_file, tmp_path):
    """The registry holds the first half of a file; the tests then offer altered versions of all of it."""
    rows = rows_for(ROWS)
    run_import(rights_file(rows[: ROWS // 2]), insurer, tmp_path)
    rows[0][FIRST] = "Changed"  # the altered files would update a row and create many: nothing may happen
    return rows


def lines_of(rows, insurer, trailer=None):
    lines = [fmt.magic_line(insurer.amc_number), fmt.header_line(), *(";".join(r) for r in rows)]
    lines.append(fmt.trailer_line(len(rows) if trailer is None else trailer))
    return lines


def write(tmp_path, data: bytes, name="bad.csv"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def assert_refused(path, insurer, tmp_path, match, **kwargs):
    before = registry_state()
    runs_before = ImportRun.objects.count()
    with pytest.raises(FileRefused, match=match) as info:
        run_import(path, insurer, tmp_path, **kwargs)
    assert registry_state() == before
    assert ImportRun.objects.count() == runs_before + 1
    run = ImportRun.objects.order_by("-pk").first()
    assert run.status == ImportRun.Status.REFUSED
    assert run.notes == [info.value.message] and run.message == ""
    assert run.notes_text() == [info.value.describe()]  # worded when shown, from the stored code
    assert run.finished_at is not None
    return info.value


def test_invalid_utf8_in_the_middle_of_the_file(insurer, rows_for, rights_file, tmp_path):
    rows = rows_for(400)
    run_import(rights_file(rows[:200]), insurer, tmp_path)
    rows[0][FIRST] = "Changed"
    encoded = [line.encode() for line in lines_of(rows, insurer)]
    encoded[300] = encoded[300].replace(rows[298][LAST].encode(), b"M\xe9lanie\xff", 1)
    assert b"\xff" in encoded[300]
    assert len(b"\n".join(encoded[:300])) > 3 * 8192  # well past the first chunk the reader decodes
    assert_refused(write(tmp_path, b"\n".join(encoded) + b"\n"), insurer, tmp_path, "UTF-8")


def test_latin1_file_is_refused(loaded, insurer, tmp_path):
    loaded[30][LAST] = "Hélène"
    data = ("\n".join(lines_of(loaded, insurer)) + "\n").encode("latin-1")
    assert_refused(write(tmp_path, data), insurer, tmp_path, "UTF-8")


def test_utf16_file_is_refused(loaded, insurer, tmp_path):
    data = ("\n".join(lines_of(loaded, insurer)) + "\n").encode("utf-16")
    assert_refused(write(tmp_path, data), insurer, tmp_path, None)


@pytest.mark.parametrize(
    "first_line",
    [
        "#rempart-products;1;{amc}",
        "#rempart-right;1;{amc}",
        "rempart-rights;1;{amc}",
        "",
        "amc_number;adherent_number",  # the header without the magic line
    ],
)
def test_wrong_magic_line(loaded, insurer, tmp_path, first_line):
    lines = lines_of(loaded, insurer)
    lines[0] = first_line.format(amc=insurer.amc_number)
    path = write(tmp_path, ("\n".join(lines) + "\n").encode())
    assert_refused(path, insurer, tmp_path, "line 1")


@pytest.mark.parametrize("version", ["2", "0", "", "1.0", "v1"])
def test_wrong_version(loaded, insurer, tmp_path, version):
    lines = lines_of(loaded, insurer)
    lines[0] = f"{fmt.MAGIC};{version};{insurer.amc_number}"
    path = write(tmp_path, ("\n".join(lines) + "\n").encode())
    assert_refused(path, insurer, tmp_path, "version")


@pytest.mark.parametrize("amc", ["999999999", "", "46709591"])
def test_wrong_insurer_on_line_1(loaded, insurer, tmp_path, amc):
    lines = lines_of(loaded, insurer)
    lines[0] = f"{fmt.MAGIC};{fmt.VERSION};{amc}"
    path = write(tmp_path, ("\n".join(lines) + "\n").encode())
    assert_refused(path, insurer, tmp_path, "line 1")


def test_magic_line_without_insurer(loaded, insurer, tmp_path):
    lines = lines_of(loaded, insurer)
    lines[0] = f"{fmt.MAGIC};{fmt.VERSION}"
    path = write(tmp_path, ("\n".join(lines) + "\n").encode())
    assert_refused(path, insurer, tmp_path, "line 1")


def _headers():
    columns = list(fmt.COLUMNS)
    swapped = columns.copy()
    swapped[8], swapped[9] = swapped[9], swapped[8]
    return [
        ";".join(columns[:-1]),  # a column missing
        ";".join([*columns, "extra"]),  # a column too many
        ";".join(swapped),  # two columns swapped
        ";".join(columns).replace("nir", "NIR", 1),
        "",  # no header (the first data row follows the magic line)
    ]


@pytest.mark.parametrize("header", _headers())
def test_wrong_header(loaded, insurer, tmp_path, header):
    lines = lines_of(loaded, insurer)
    lines[1] = header
    if not header:
        del lines[1]
    path = write(tmp_path, ("\n".join(lines) + "\n").encode())
    assert_refused(path, insurer, tmp_path, "header")


def test_missing_trailer(loaded, insurer, tmp_path):
    lines = lines_of(loaded, insurer)[:-1]
    assert_refused(write(tmp_path, ("\n".join(lines) + "\n").encode()), insurer, tmp_path, "truncated")


def test_file_cut_in_the_middle_of_a_row(loaded, insurer, tmp_path):
    data = ("\n".join(lines_of(loaded, insurer)) + "\n").encode()
    assert_refused(write(tmp_path, data[: len(data) * 2 // 3]), insurer, tmp_path, "truncated")


def test_empty_file(insurer, tmp_path):
    assert_refused(write(tmp_path, b""), insurer, tmp_path, "line 1")


@pytest.mark.parametrize("announced", [ROWS - 1, ROWS + 1, 0, 2 * ROWS])
def test_wrong_trailer_count(loaded, insurer, tmp_path, announced):
    lines = lines_of(loaded, insurer, trailer=announced)
    assert_refused(write(tmp_path, ("\n".join(lines) + "\n").encode()), insurer, tmp_path, "truncated")


@pytest.mark.parametrize(
    "trailer", ["#end", "#end;", "#end;abc", "#end;-1", "#end;\u00b2", "#end;4\u2070\u2070"]
)
def test_malformed_trailer(loaded, insurer, tmp_path, trailer):
    lines = lines_of(loaded, insurer)
    lines[-1] = trailer
    assert_refused(write(tmp_path, ("\n".join(lines) + "\n").encode()), insurer, tmp_path, None)


def test_data_after_the_trailer(loaded, insurer, tmp_path):
    lines = lines_of(loaded, insurer)
    lines.append(";".join(loaded[0]))
    assert_refused(write(tmp_path, ("\n".join(lines) + "\n").encode()), insurer, tmp_path, "after")


def test_second_trailer_after_the_trailer(loaded, insurer, tmp_path):
    lines = lines_of(loaded, insurer)
    lines.append(lines[-1])
    assert_refused(write(tmp_path, ("\n".join(lines) + "\n").encode()), insurer, tmp_path, "after")


def test_unterminated_quote_is_refused(loaded, insurer, tmp_path):
    lines = lines_of(loaded, insurer)
    lines[25] = lines[25].replace(";", ';"', 1)
    assert_refused(write(tmp_path, ("\n".join(lines) + "\n").encode()), insurer, tmp_path, None)


def test_refusal_in_full_mode_and_in_a_dry_run_also_changes_nothing(loaded, insurer, tmp_path):
    path = write(tmp_path, ("\n".join(lines_of(loaded, insurer, trailer=1)) + "\n").encode())
    assert_refused(path, insurer, tmp_path, "truncated", mode="full", force=True)
    assert_refused(path, insurer, tmp_path, "truncated", dry_run=True)


def test_refused_stream_is_recorded_too(loaded, insurer, tmp_path):
    stream = io.BytesIO(b"#rempart-rights;1;000000000\n")
    assert_refused(stream, insurer, tmp_path, "another insurer")


# ---------------------------------------------------------------------------------------------- accepted variants


def test_empty_lines_bom_and_crlf_are_accepted(insurer, rows_for, tmp_path):
    rows = rows_for(30)
    lines = [fmt.magic_line(insurer.amc_number), fmt.header_line()]
    for row in rows:
        lines += [";".join(row), ""]
    lines += [fmt.trailer_line(len(rows)), "", ""]
    path = write(tmp_path, b"\xef\xbb\xbf" + "\r\n".join(lines).encode())
    run, summary = run_import(path, insurer, tmp_path)
    assert run.status == ImportRun.Status.SUCCEEDED
    assert (summary.rows_read, summary.created, summary.rejected) == (30, 30, 0)
    assert Beneficiary.objects.count() == 30


def test_padded_header_and_trailer_are_accepted(insurer, rows_for, tmp_path):
    rows = rows_for(5)
    header = ";".join(f" {name} " for name in fmt.COLUMNS)
    lines = [fmt.magic_line(insurer.amc_number), header, *(";".join(r) for r in rows), "#end; 5 "]
    run, summary = run_import(write(tmp_path, ("\n".join(lines)).encode()), insurer, tmp_path)
    assert summary.created == 5


def test_empty_file_body_with_trailer_zero(insurer, tmp_path):
    lines = [fmt.magic_line(insurer.amc_number), fmt.header_line(), fmt.trailer_line(0)]
    run, summary = run_import(write(tmp_path, ("\n".join(lines) + "\n").encode()), insurer, tmp_path)
    assert run.status == ImportRun.Status.SUCCEEDED
    assert summary.rows_read == 0


def test_file_sha256_is_recorded(insurer, rows_for, rights_file, tmp_path):
    import hashlib

    path = rights_file(rows_for(10))
    run, _summary = run_import(path, insurer, tmp_path)
    run.refresh_from_db()
    assert run.file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_separator_only_lines_count_as_blank_and_extra_fields_are_ignored(insurer, rows_for, tmp_path):
    rows = rows_for(6)
    lines = [fmt.magic_line(insurer.amc_number) + ";extra", fmt.header_line()]
    for row in rows:
        lines += [";".join(row), ";;;;", " ; ;"]
    lines += [fmt.trailer_line(len(rows)) + ";ignored", ";;;"]
    run, summary = run_import(write(tmp_path, ("\n".join(lines) + "\n").encode()), insurer, tmp_path)
    assert run.status == ImportRun.Status.SUCCEEDED
    assert (summary.rows_read, summary.created, summary.rejected) == (6, 6, 0)


def test_blank_lines_count_in_line_numbers(insurer, rows_for, tmp_path):
    from rempart.registry.tests.support import BIRTH, read_errors

    rows = rows_for(4)
    rows[2][BIRTH] = "1980-13-01"
    lines = [fmt.magic_line(insurer.amc_number), fmt.header_line(), "", *(";".join(r) for r in rows)]
    lines.append(fmt.trailer_line(len(rows)))
    run, _summary = run_import(write(tmp_path, ("\n".join(lines) + "\n").encode()), insurer, tmp_path)
    assert [(line, column) for line, column, _r in read_errors(run)] == [(6, "birth_date")]


def test_quoted_values_read_like_plain_ones(insurer, rows_for, rights_file, tmp_path):
    rows = rows_for(12)
    run_import(rights_file(rows), insurer, tmp_path)
    lines = [fmt.magic_line(insurer.amc_number), fmt.header_line()]
    lines += [";".join(f'"{v}"' for v in row) for row in rows]
    lines.append(fmt.trailer_line(len(rows)))
    _run, summary = run_import(write(tmp_path, ("\r\n".join(lines) + "\r\n").encode()), insurer, tmp_path)
    assert (summary.unchanged, summary.created, summary.updated, summary.rejected) == (12, 0, 0, 0)


@pytest.mark.parametrize("bad", ['"Dupont"x', 'Du"pont"', '"Dupont" '])
def test_text_after_a_closing_quote_or_stray_quotes(loaded, insurer, tmp_path, bad):
    """Quoting that is not standard CSV: refused as a whole, or at worst one rejected row; never imported."""
    lines = lines_of(loaded, insurer)
    fields = lines[10].split(";")
    fields[8] = bad
    lines[10] = ";".join(fields)
    path = write(tmp_path, ("\n".join(lines) + "\n").encode())
    before = registry_state()
    try:
        run, summary = run_import(path, insurer, tmp_path)
    except FileRefused:
        assert registry_state() == before
    else:
        from rempart.registry.tests.support import read_errors

        assert [(line, column) for line, column, _r in read_errors(run)] == [(11, "last_name")]
        assert summary.rejected == 1
