"""The ledger archive: closed months to signed Parquet files, and every reader answering the same afterwards."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone

from rempart.incidents import workflow
from rempart.incidents.scope import ScopeCriteria, ScopeError, archived, count_rows, people_of, summarise
from rempart.ledger import archive, archive_read, chain
from rempart.ledger import archive_manifest as am
from rempart.ledger.models import Disclosure
from rempart.ledger.partitions import ensure_partitions, partition_name

JAN, FEB = dt.datetime(2025, 1, 1, tzinfo=dt.UTC), dt.datetime(2025, 2, 1, tzinfo=dt.UTC)
ADDRESSES = ["192.0.2.10", "192.0.2.200", "198.51.100.7", "2001:db8::5", None]


def _append_month(rng: random.Random, start: dt.datetime, n: int) -> None:
    """Rows as the gate writes them, over actors, addresses, insurers and outcomes, in time order."""
    for i in range(n):
        matched = rng.random() < 0.8
        api = rng.random() < 0.4
        with transaction.atomic():
            chain.append(
                created_at=start + dt.timedelta(hours=i * 600 / n + rng.random()),
                channel="api" if api else "portal",
                purpose=rng.choice(["rights_check", "pec"]),
                organisation_id=rng.choice([1, 2, 3]),
                user_id=None if api else rng.choice([1, 2, 3, 4, 5]),
                token_id=rng.choice([1, 2, 3]) if api else None,
                ip_address=rng.choice(ADDRESSES),
                insurer_id=rng.choice([1, 2]) if matched else None,
                beneficiary_id=rng.randint(1, 40) if matched else None,
                outcome="covered" if matched else "no_match",
                domain="OPTI",
                fields=rng.choice([["rights"], ["rights", "terms"]]) if matched else [],
                presented_hash=bytes([i % 256]) * 16,
            )


def _append_skewed_pair() -> None:
    """Two app servers' clocks apart at the month's end: the row of February comes first in its chain, the row of
    January right after it. January's chain then has a gap, and its last row links to a row of February."""
    with transaction.atomic():
        chain.append_many(
            [
                dict(created_at=FEB + dt.timedelta(milliseconds=1), channel="api", purpose="rights_check",
                     organisation_id=1, token_id=1, ip_address="192.0.2.10", insurer_id=1, beneficiary_id=7,
                     outcome="covered", domain="OPTI", fields=["rights"]),
                dict(created_at=FEB - dt.timedelta(milliseconds=1), channel="portal", purpose="rights_check",
                     organisation_id=2, user_id=1, ip_address="192.0.2.200", insurer_id=2, beneficiary_id=8,
                     outcome="covered", domain="OPTI", fields=["rights"]),
            ]
        )  # fmt: skip


@pytest.fixture
def ledger(db):
    if connection.vendor == "postgresql":
        ensure_partitions(since=JAN.date(), months_ahead=1)
    rng = random.Random(17)
    _append_month(rng, JAN, 149)
    _append_skewed_pair()
    _append_month(rng, FEB, 119)
    _append_month(rng, timezone.now() - dt.timedelta(days=1), 60)
    return Disclosure.objects.count()


SCOPES = [
    ScopeCriteria(user_ids=(1,)),
    ScopeCriteria(token_ids=(2,)),
    ScopeCriteria(user_ids=(2, 3), token_ids=(1,), organisation_ids=(3,)),
    ScopeCriteria(networks=("192.0.2.0/25",)),
    ScopeCriteria(networks=("2001:db8::/32", "198.51.100.0/24"), channels=("portal",)),
    ScopeCriteria(organisation_ids=(2,), since=JAN + dt.timedelta(days=10), until=FEB + dt.timedelta(days=5)),
    ScopeCriteria(since=FEB - dt.timedelta(days=3)),
    ScopeCriteria(user_ids=(4,), purposes=("pec",), networks=("192.0.2.0/24",)),
]


def _answers() -> list:
    answers = []
    for criteria in SCOPES:
        incident = workflow.open_incident(title="x", detected_at=timezone.now())
        scope = workflow.attach_scope(incident, criteria, label="s")
        frozen = sorted(
            [(e.insurer_id, e.beneficiary_id, e.organisation_id, e.user_id, e.token_id, json.dumps(e.fields),
              e.disclosures, e.first_at, e.last_at) for e in scope.entries.all()],
            key=repr,
        )  # fmt: skip
        answers.append(
            (summarise(criteria), count_rows(criteria), count_rows(criteria, misses=True),
             sorted(people_of(criteria, archived(criteria)), key=repr),
             frozen, scope.people, scope.disclosures, scope.misses, scope.digest, scope.ledger_scope_rows)
        )  # fmt: skip
    return answers


def test_scopes_and_verification_answer_the_same_after_the_months_are_archived(ledger, settings, capsys):
    before = _answers()
    assert any(a[0].people for a in before) and any(a[2] for a in before)  # the scopes select something
    call_command("ledger", "verify")

    for month in ("2025-01", "2025-02"):
        call_command("ledger", "archive", month=month)
    live = Disclosure.objects.count()
    assert live == 60 and ledger == 330  # the two months left the database
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s)", [partition_name("ledger_disclosure", JAN.date())])
            assert cursor.fetchone()[0] is None  # the partition is gone, not emptied
    manifests, problems = am.load_all()
    assert [m.month for m in manifests] == ["2025-01", "2025-02"] and not problems
    assert sum(m.rows for m in manifests) == 270

    assert _answers() == before
    capsys.readouterr()
    call_command("ledger", "verify")
    assert "OK: 330 rows" in capsys.readouterr().out  # archived rows walked with the live ones
    call_command("ledger", "verify", "--incremental")
    call_command("ledger", "anchor")
    call_command("ledger", "verify", "--against-published")


def test_the_files_are_in_chain_order_the_copies_sorted_for_scopes_and_checkpoints_kept(ledger, monkeypatch):
    monkeypatch.setattr(am, "CHECKPOINT_EVERY", 3)
    result = archive.archive_month("2025-01")
    assert result.removed and result.rows == 150
    (manifest,) = am.load_all()[0]
    assert manifest.version == 2 and manifest.document["format"] == am.FORMAT
    # The skewed row of January (its chain's previous row is in February) starts a file of its own.
    assert sorted(e["rows"] for e in manifest.files) == [1, 149]
    for entry in manifest.files:
        table = pq.read_table(manifest.path(entry))
        assert "prev_hash" not in table.column_names and "ip_key" not in table.column_names
        assert set(table.column("chain").to_pylist()) == {entry["chain"]}
        seqs = table.column("seq").to_pylist()
        assert seqs == list(range(entry["first_seq"], entry["last_seq"] + 1)) and len(seqs) == entry["rows"]
        assert [s for s, _h in entry["checkpoints"]] == seqs[2:-1:3]
    lone = min(manifest.files, key=lambda e: e["rows"])
    february_row = Disclosure.objects.get(chain=lone["chain"], seq=lone["first_seq"] - 1)
    assert february_row.created_at >= FEB and bytes.fromhex(lone["first_prev_hash"]) == bytes(
        february_row.row_hash
    )

    def nulls_last(value):
        return (value is None, value if value is not None else 0)

    actor = pq.read_table(manifest.scope_path("actor"))
    by_ip = pq.read_table(manifest.scope_path("ip"))
    assert actor.num_rows == by_ip.num_rows == 150 == manifest.scope_files["actor"]["rows"]
    keys = [tuple(nulls_last(v) for v in values) for values in zip(
        *(actor.column(k).to_pylist() for k in am.SCOPE_COPIES["actor"]), strict=True)]  # fmt: skip
    assert keys == sorted(keys)  # actor first: a scope by account, token or organisation skips row groups
    ips = [nulls_last(v) for v in by_ip.column("ip_key").to_pylist()]
    assert ips == sorted(ips)
    assert {(a, k) for a, k in zip(by_ip.column("ip_address").to_pylist(), by_ip.column("ip_key").to_pylist(),
                                    strict=True)} == {(a, am.ip_key(a)) for a in ADDRESSES}  # fmt: skip
    assert not (manifest.directory / am.STAGE).exists()  # the scratch rows are gone
    # Verification can start at a checkpoint inside a file: the row's prev_hash is the row before's hash.
    arch = archive_read.load(full=True)
    assert not arch.problems
    entry = max(manifest.files, key=lambda e: e["rows"])
    seq, digest = entry["checkpoints"][0]
    rows = list(arch.chain_rows(entry["chain"], after=seq))
    assert rows[0].seq == seq + 1 and bytes(rows[0].prev_hash).hex() == digest
    assert all(chain._intact(row) for row in rows)
    assert arch.row_at(lone["chain"], lone["first_seq"]).prev_hash == bytes(february_row.row_hash)


def test_a_scope_copy_that_does_not_hold_the_chain_files_rows_is_caught(ledger, capsys):
    """A copy written wrong (a row missing) but signed: its size and hash match the manifest, so only the
    comparison with the chain files finds it; scopes would otherwise trust it."""
    archive.archive_month("2025-01")
    (manifest,) = am.load_all()[0]
    path = manifest.scope_path("actor")
    table = pq.read_table(path)
    pq.write_table(table.slice(1), path)
    document = dict(manifest.document)
    document["scope_files"] = {**document["scope_files"], "actor": {
        **document["scope_files"]["actor"], "bytes": path.stat().st_size, "sha256": am.sha256_of(path)}}  # fmt: skip
    (manifest.directory / am.MANIFEST).write_text(json.dumps(am.sign(document)))
    report = chain.verify()
    assert any(
        "scope copy actor" in problem and "not those of the chain files" in problem
        for problem in report.broken
    )


def _as_version_1(manifest: am.Manifest) -> None:
    """Rewrite an archived month as version 1 wrote it: chain files sorted by actor with prev_hash and ip_key, no
    scope copies, a manifest of format 1 (signed)."""
    arch = archive_read.Archive(manifests=[manifest])
    entries = []
    for entry in manifest.files:
        rows = [r for r in arch.chain_rows(entry["chain"], entry["first_seq"] - 1, entry["last_seq"])]
        columns = {name: [] for name in am.SCHEMA_V1.names}
        for row in rows:
            for name in am.SCHEMA_V1.names:
                value = am.ip_key(row.ip_address) if name == "ip_key" else getattr(row, name)
                columns[name].append(json.dumps(value) if name == "fields" else value)
        table = pa.table(columns, schema=am.SCHEMA_V1)
        order = pc.sort_indices(table, sort_keys=[(k, "ascending", "at_end") for k in am.SORT_KEY_V1])
        path = manifest.path(entry)
        pq.write_table(table.take(order), path, row_group_size=am.ROW_GROUP_ROWS, compression="zstd")
        entries.append({**entry, "bytes": path.stat().st_size, "sha256": am.sha256_of(path)})
    for copy in am.SCOPE_COPIES:
        manifest.scope_path(copy).unlink()
    document = {
        k: v for k, v in manifest.document.items() if k not in ("scope_files", "scope_row_group_rows")
    }
    document.update(format=am.FORMAT_V1, files=entries, sort=list(am.SORT_KEY_V1))
    (manifest.directory / am.MANIFEST).write_text(json.dumps(am.sign(document)))


def test_a_month_archived_in_version_1_still_answers_and_verifies_beside_version_2(ledger, capsys):
    before = _answers()
    archive.archive_month("2025-01")
    (january,) = am.load_all()[0]
    _as_version_1(january)
    archive.archive_month("2025-02")  # version 2, after a version 1 month
    manifests = am.load_all()[0]
    assert [m.version for m in manifests] == [1, 2]
    assert _answers() == before
    report = chain.verify()
    assert report.ok and report.rows == 330, report.broken
    assert archive_read.load(full=True).problems == []


def test_an_open_month_or_one_inside_the_grace_period_is_refused(ledger, settings):
    this_month = timezone.now().strftime("%Y-%m")
    with pytest.raises(CommandError, match="not closed"):
        call_command("ledger", "archive", month=this_month)
    settings.REMPART_LEDGER_ARCHIVE_GRACE_DAYS = 100_000
    with pytest.raises(CommandError, match="not closed"):
        call_command("ledger", "archive", month="2025-01")
    settings.REMPART_LEDGER_ARCHIVE_GRACE_DAYS = 7
    with pytest.raises(CommandError, match="older months"):
        call_command("ledger", "archive", month="2025-02")  # oldest first
    with pytest.raises(CommandError, match="YYYY-MM"):
        call_command("ledger", "archive", month="janvier")
    with pytest.raises(CommandError, match="no ledger rows"):
        call_command("ledger", "archive", month="2024-06")
    assert Disclosure.objects.count() == ledger


def test_a_dry_run_writes_and_removes_nothing(ledger, settings, capsys):
    call_command("ledger", "archive", month="2025-01", dry_run=True)
    assert "150 rows of 2025-01 can be archived" in capsys.readouterr().out
    assert Disclosure.objects.count() == ledger and not Path(settings.REMPART_LEDGER_ARCHIVE_DIR).exists()


def test_a_crash_before_the_rows_leave_is_redone_and_the_database_wins_meanwhile(ledger, monkeypatch):
    criteria = ScopeCriteria(since=JAN)
    before = summarise(criteria)

    def crash(*args):
        raise KeyboardInterrupt  # the process killed after the files, before the removal

    monkeypatch.setattr(archive, "_remove_rows", crash)
    with pytest.raises(KeyboardInterrupt):
        archive.archive_month("2025-01")
    assert Disclosure.objects.count() == ledger
    assert [m.month for m in am.load_all()[0]] == ["2025-01"]  # written, signed, but its rows are still here
    assert summarise(criteria) == before  # not counted twice
    assert chain.verify().ok
    monkeypatch.undo()
    result = archive.archive_month("2025-01")  # the next run rewrites the files and removes the rows
    assert result.removed and Disclosure.objects.count() == ledger - 150
    assert summarise(criteria) == before and chain.verify().ok
    assert archive.archive_month("2025-01").already  # and then there is nothing left to do


def test_a_failed_removal_rolls_back_and_leaves_the_rows(ledger, monkeypatch):
    """The check inside the removal's transaction finds the month changed: the partition stays attached."""
    monkeypatch.setattr(archive, "_manifest_stats", lambda manifest: {})
    with pytest.raises(am.ArchiveError, match="changed while it was archived"):
        archive.archive_month("2025-01")
    assert Disclosure.objects.count() == ledger
    assert Disclosure.objects.filter(created_at__lt=FEB).count() == 150


def test_the_append_only_guard_still_refuses_deletes_after_an_archive(ledger):
    archive.archive_month("2025-01")
    with pytest.raises(PermissionError):
        Disclosure.objects.all().delete()
    if connection.vendor == "postgresql":
        from django.db import DatabaseError

        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("DELETE FROM ledger_disclosure WHERE created_at < %s", [timezone.now()])


def _tamper_parquet(path: Path) -> None:
    table = pq.read_table(path)
    beneficiaries = table.column("beneficiary_id").to_pylist()
    index = next(i for i, b in enumerate(beneficiaries) if b)
    beneficiaries[index] += 1000
    table = table.set_column(table.schema.get_field_index("beneficiary_id"), "beneficiary_id",
                             [beneficiaries])  # fmt: skip
    pq.write_table(table, path)


@pytest.mark.parametrize("what", ["file", "manifest", "missing", "forged"])
def test_a_tampered_archive_fails_verification_and_scopes_refuse(ledger, capsys, what):
    february = ScopeCriteria(user_ids=(1,), since=FEB)
    february_before = summarise(february)
    archive.archive_month("2025-01")
    (manifest,) = am.load_all()[0]
    path = manifest.directory / am.MANIFEST
    if what == "file":
        _tamper_parquet(manifest.path(manifest.files[0]))
    elif what == "manifest":  # a row count edited to match a trimmed file: the signature no longer verifies
        document = json.loads(path.read_text())
        document["files"][0]["rows"] -= 1
        path.write_text(json.dumps(document))
    elif what == "missing":
        manifest.path(manifest.files[0]).unlink()
    else:  # re-signed with another key: not a key the platform trusts
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        document = json.loads(path.read_text())
        other = Ed25519PrivateKey.generate()
        document["key_id"] = am.key_id(other.public_key())
        import base64

        document["signature"] = base64.b64encode(other.sign(am.canonical(document))).decode()
        path.write_text(json.dumps(document))
    with pytest.raises(CommandError):
        call_command("ledger", "verify")
    out = capsys.readouterr().out
    assert "BROKEN archive 2025-01" in out
    if what == "file":
        assert "SHA-256" in out or "size" in out or "bytes" in out
    elif what in ("manifest", "forged"):
        assert "signature" in out or "unknown key" in out
    with pytest.raises(ScopeError, match="archive du registre refusée"):
        summarise(ScopeCriteria(user_ids=(1,)))
    with pytest.raises(CommandError, match="archive du registre refusée"):
        call_command("scope", "--ip", "192.0.2.0/24")
    # A scope whose window does not reach the damaged month still answers, unless a manifest is bad (then every
    # scope refuses: which months it holds cannot be trusted).
    if what in ("file", "missing"):
        assert summarise(february) == february_before
    else:
        with pytest.raises(ScopeError):
            summarise(february)
    with pytest.raises(am.ArchiveError):
        archive.archive_month("2025-02")  # nothing is built on a broken archive


def test_a_file_with_the_right_size_but_other_bytes_is_caught_by_its_hash(ledger, capsys):
    archive.archive_month("2025-01")
    (manifest,) = am.load_all()[0]
    target = manifest.path(manifest.files[0])
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    report = chain.verify()
    assert any("SHA-256" in problem for problem in report.broken)


def test_verify_columns_match_the_chain():
    assert archive_read.VERIFY_COLUMNS == chain._VERIFY_COLUMNS
    assert set(am.SCHEMA.names) == set(chain._VERIFY_COLUMNS) - {
        "prev_hash"
    }  # the manifest gives the first link
    assert set(am.SCHEMA_V1.names) == {*chain._VERIFY_COLUMNS, "ip_key"}
    assert set(am.SCOPE_SCHEMA.names) <= {*am.SCHEMA.names, "ip_key"}


def test_networks_become_byte_ranges_as_postgresql_compares_them():
    low, high = am.network_range("192.0.2.0/25")
    assert low <= am.ip_key("192.0.2.10") <= high
    assert not low <= am.ip_key("192.0.2.200") <= high
    assert not low <= am.ip_key("2001:db8::5") <= high  # another family never matches
    low, high = am.network_range("2001:db8::/32")
    assert low <= am.ip_key("2001:db8::5") <= high and not low <= am.ip_key("192.0.2.10") <= high
