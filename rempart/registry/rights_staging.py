"""The CPU-heavy half of the rights import: rows checked, encrypted and encoded for the staging table.

Every row goes through rights_format.check_row (python-stdnum NIR check, AES-GCM, HMAC blind index and
fingerprints), then becomes one staging row, encoded the way the database loads it fastest: PostgreSQL
binary COPY data, or plain tuples for SQLite. A RowStager works on chunks of rows; the import runs it in
this process for small files and in a few worker processes for big ones (``ParallelStager``), the main
process reading the file and loading the staging table meanwhile. Chunks come back in file order, and
only a few are in flight at any time, so memory stays bounded and the error report keeps its order.

Nothing here touches the database or Django: worker processes only need the keyring and the insurer's
product codes.
"""

from __future__ import annotations

import datetime as dt
import gc
import multiprocessing
import struct
from collections import deque
from collections.abc import Iterable, Iterator

from rempart.lib.crypto import FieldCipher, Keyring
from rempart.registry import rights_format as fmt

# The staging table: the row number and the rejected flag, the product's id, then check_row's values.
STAGE_COLUMNS = (
    ("row_no", "integer NOT NULL"), ("rejected", "smallint NOT NULL"), ("product_id", "bigint"),
    ("adherent", "varchar(20) NOT NULL"), ("product_code", "varchar(20)"), ("contract_start", "date"),
    ("contract_end", "date"), ("contract_status", "varchar(10)"), ("member", "smallint"),
    ("quality", "varchar(1)"), ("last_name", "varchar(60)"), ("first_name", "varchar(60)"),
    ("sex", "varchar(1)"), ("birth_year", "smallint"), ("birth_month", "smallint"), ("birth_day", "smallint"),
    ("birth_rank", "smallint"), ("nir_cipher", "bytea"), ("nir_index", "bytea"), ("od_nir_cipher", "bytea"),
    ("od_nir_index", "bytea"), ("coverage_start", "date"), ("coverage_end", "date"), ("contract_fp", "bigint"),
    ("fp", "bigint"),
)  # fmt: skip
STAGE_COLUMN_NAMES = tuple(name for name, _type in STAGE_COLUMNS)
_DATE_COLUMNS = tuple(i for i, (_name, kind) in enumerate(STAGE_COLUMNS) if kind == "date")

CHUNK_ROWS = 5000
GC_THRESHOLD = 100_000  # allocations between young-generation collections while rows are staged
UNKNOWN_PRODUCT = ("product_code", "unknown_product")


class RowStager:
    """Checks a chunk of rows; returns its errors (line, column, message) and its staging rows, encoded."""

    def __init__(self, amc_number: str, products: dict[str, int], cipher: FieldCipher, binary: bool) -> None:
        self.amc_number = amc_number
        self.products = products
        self.cipher = cipher
        self.binary = binary

    def stage(self, rows: Iterable[tuple[int, list[str]]]) -> tuple[list[tuple[int, str, dict]], object]:
        amc, products, cipher, check_row = self.amc_number, self.products, self.cipher, fmt.check_row
        errors: list[tuple[int, str, dict]] = []  # (line, column, message: code and parameters)
        staged: list[tuple] = []
        for row_no, fields in rows:
            try:
                values = check_row(fields, amc, cipher)
                product_id = products.get(values[1])
                if product_id is None:
                    raise fmt.RowError(*UNKNOWN_PRODUCT)
            except fmt.RowError as exc:
                errors.append((row_no, exc.column, exc.message))
                staged.append(rejected_values(row_no, fields))
                continue
            staged.append((row_no, 0, product_id, *values))
        return errors, (copy_binary(staged) if self.binary else sqlite_rows(staged))


def rejected_values(row_no: int, fields: list[str]) -> tuple:
    """A rejected row keeps its (adherent, member) key, so a full import does not end what it names."""
    adherent, member = fmt.row_key(fields)
    return (row_no, 1, None, adherent, None, None, None, None, member) + (None,) * (len(STAGE_COLUMNS) - 9)


# ---------------------------------------------------------------------------------------------- encodings

_PG_EPOCH = dt.date(2000, 1, 1).toordinal()
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\0" + bytes(8)  # binary COPY: header, flags, header extension length
COPY_TRAILER = b"\xff\xff"
_NULL = b"\xff\xff\xff\xff"
_LENGTH = struct.Struct(">i").pack
_ROW_START = struct.Struct(">hiiihiq").pack  # field count, row_no, rejected, product_id (lengths first)
_REJECTED_START = struct.Struct(">hiiih").pack
_TWO_INT8 = struct.Struct(">iqiq").pack  # the two fingerprints
# Encodings of values that repeat (small numbers, dates, names, codes), computed once.
_CACHE_LIMIT = 50_000
_INT2 = {None: _NULL, **{n: struct.pack(">ih", 2, n) for n in range(0, 3000)}}
_DATES: dict[dt.date | None, bytes] = {None: _NULL}
_TEXTS: dict[str | None, bytes] = {None: _NULL}
_ISO: dict[dt.date, str] = {}


def _date(value: dt.date) -> bytes:
    encoded = struct.pack(">ii", 4, value.toordinal() - _PG_EPOCH)
    if len(_DATES) < _CACHE_LIMIT:
        _DATES[value] = encoded
    return encoded


def _text(value: str) -> bytes:
    data = value.encode()
    encoded = _LENGTH(len(data)) + data
    if len(_TEXTS) < _CACHE_LIMIT:
        _TEXTS[value] = encoded
    return encoded


def _int2(value: int | None) -> bytes:
    return _INT2.get(value) or struct.pack(">ih", 2, value)


def copy_binary(rows: list[tuple]) -> bytes:
    """The rows as PostgreSQL binary COPY tuples (the stream's signature and trailer are the loader's)."""
    count = len(STAGE_COLUMNS)
    parts: list[bytes] = []
    append = parts.append
    texts, dates, null, length, row_start, int8 = _TEXTS, _DATES, _NULL, _LENGTH, _ROW_START, _TWO_INT8
    text, date, int2, ints = _text, _date, _int2, _INT2
    for row in rows:
        (
            row_no, rejected, product_id, adherent, product, contract_start, contract_end, status, member,
            quality, last_name, first_name, sex, birth_year, birth_month, birth_day, birth_rank, nir_cipher,
            nir_index, od_nir_cipher, od_nir_index, coverage_start, coverage_end, contract_fp, fp,
        ) = row  # fmt: skip
        if rejected:
            append(_REJECTED_START(count, 4, row_no, 2, rejected) + null)
        else:
            append(row_start(count, 4, row_no, 2, rejected, 8, product_id))
        adherent_bytes = adherent.encode()
        append(
            b"".join((
                length(len(adherent_bytes)), adherent_bytes,
                texts.get(product) or text(product),
                dates.get(contract_start) or date(contract_start),
                dates.get(contract_end) or date(contract_end),
                texts.get(status) or text(status),
                ints.get(member) or int2(member),
                texts.get(quality) or text(quality),
                texts.get(last_name) or text(last_name),
                texts.get(first_name) or text(first_name),
                texts.get(sex) or text(sex),
                ints.get(birth_year) or int2(birth_year),
                ints.get(birth_month) or int2(birth_month),
                ints.get(birth_day) or int2(birth_day),
                ints.get(birth_rank) or int2(birth_rank),
                null if nir_cipher is None else length(len(nir_cipher)) + nir_cipher,
                null if nir_index is None else length(len(nir_index)) + nir_index,
                null if od_nir_cipher is None else length(len(od_nir_cipher)) + od_nir_cipher,
                null if od_nir_index is None else length(len(od_nir_index)) + od_nir_index,
                dates.get(coverage_start) or date(coverage_start),
                dates.get(coverage_end) or date(coverage_end),
            ))
        )  # fmt: skip
        append(null + null if rejected else int8(8, contract_fp, 8, fp))
    return b"".join(parts)


def sqlite_rows(rows: list[tuple]) -> list[tuple]:
    """The rows for SQLite: dates as ISO text (the way Django stores them)."""
    iso = _ISO
    if len(iso) > 50_000:
        iso.clear()
    result = []
    for row in rows:
        if row[1]:  # rejected: no dates
            result.append(row)
            continue
        values = list(row)
        for i in _DATE_COLUMNS:
            day = values[i]
            if day is not None:
                text = iso.get(day)
                if text is None:
                    text = iso[day] = day.isoformat()
                values[i] = text
        result.append(tuple(values))
    return result


# ---------------------------------------------------------------------------------------------- workers


def chunked(rows: Iterable[tuple[int, list[str]]], size: int = CHUNK_ROWS) -> Iterator[list]:
    chunk: list = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


_worker_stager: RowStager | None = None


def _start_worker(amc_number: str, products: dict[str, int], keyring: Keyring, binary: bool) -> None:
    global _worker_stager  # noqa: PLW0603 - one stager per worker process
    _worker_stager = RowStager(amc_number, products, FieldCipher(keyring), binary)
    gc.freeze()  # what the worker inherited stays put: never scanned, never copied on write
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])


def _stage_in_worker(rows: list) -> tuple[list, object]:
    assert _worker_stager is not None
    return _worker_stager.stage(rows)


class ParallelStager:
    """Runs a RowStager over chunks in worker processes; results come back in order, few in flight."""

    def __init__(self, stager: RowStager, workers: int) -> None:
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        # The workers rebuild the cipher from the keyring: nothing but keys and product ids cross over.
        self._pool = context.Pool(
            workers,
            initializer=_start_worker,
            initargs=(stager.amc_number, stager.products, stager.cipher.keyring, stager.binary),
        )
        self._in_flight = 2 * workers + 1

    def stage(self, chunks: Iterable[list]) -> Iterator[tuple[list, object]]:
        pending: deque = deque()
        for chunk in chunks:
            pending.append(self._pool.apply_async(_stage_in_worker, (chunk,)))
            if len(pending) >= self._in_flight:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()
