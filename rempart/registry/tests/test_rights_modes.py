"""Delta and full imports, the safety threshold, reactivation, dry runs and the ouvrant droit's NIR."""

from __future__ import annotations

import datetime as dt

import pytest

from rempart.conftest import TODAY
from rempart.registry.models import Beneficiary, Contract, ImportRun
from rempart.registry.rights_import import FileRefused
from rempart.registry.tests.support import (  # noqa: I001
    ADHERENT,
    BIRTH,
    C_END,
    C_STATUS,
    COV_END,
    FIRST,
    MEMBER,
    NIR,
    OD_NIR,
    QUALITY,
    beneficiary_by_key,
    birth_date_of,
    card_nir_matches,
    read_errors,
    registry_state,
    run_import,
)

YESTERDAY = TODAY - dt.timedelta(days=1)


def contracts_of(rows) -> dict[str, list[list[str]]]:
    grouped: dict[str, list[list[str]]] = {}
    for row in rows:
        grouped.setdefault(row[ADHERENT], []).append(row)
    return grouped


def open_ended(rows, count, *, min_members=1, skip=()):
    """Adherent numbers of `count` active contracts with no end date and at least `min_members` rows."""
    found = [
        adherent
        for adherent, members in contracts_of(rows).items()
        if members[0][C_STATUS] == "active"
        and not members[0][C_END]
        and len(members) >= min_members
        and adherent not in skip
    ]
    assert len(found) >= count
    return found[:count]


def without(rows, adherents):
    return [row for row in rows if row[ADHERENT] not in adherents]


def snapshot(insurer):
    return {
        key: (b.pk, b.first_name, b.coverage_end, b.fingerprint)
        for key, b in beneficiary_by_key(insurer).items()
    }


# ---------------------------------------------------------------------------------------------- delta


def test_delta_updates_a_changed_row_and_leaves_the_others(insurer, rows_for, rights_file, tmp_path):
    rows = rows_for(40)
    run_import(rights_file(rows), insurer, tmp_path)
    before = snapshot(insurer)
    rows[7][FIRST] = "Gaspard"
    key = (rows[7][ADHERENT], int(rows[7][MEMBER]))

    run, summary = run_import(rights_file(rows), insurer, tmp_path)

    assert (summary.created, summary.updated, summary.unchanged, summary.rejected) == (0, 1, 39, 0)
    assert (summary.ended, summary.contracts_ended) == (0, 0)
    after = snapshot(insurer)
    assert after[key][0] == before[key][0]  # same row, updated in place
    assert after[key][1] == "Gaspard"
    assert after[key][3] != before[key][3]
    assert {k: v for k, v in after.items() if k != key} == {k: v for k, v in before.items() if k != key}
    assert run.counts["updated"] == 1


def test_delta_with_new_and_partial_rows_ends_nothing(insurer, rows_for, rights_file, tmp_path):
    rows = rows_for(60)
    run_import(rights_file(rows[:30]), insurer, tmp_path)
    before = snapshot(insurer)
    _run, summary = run_import(rights_file(rows[20:]), insurer, tmp_path, mode="delta")
    assert (summary.created, summary.unchanged, summary.ended) == (30, 10, 0)
    after = snapshot(insurer)
    assert len(after) == 60
    assert {k: after[k] for k in before} == before
    assert not Contract.objects.filter(status=Contract.Status.TERMINATED, end_date=YESTERDAY).exists()


def test_contract_change_updates_the_contract(insurer, rows_for, rights_file, tmp_path):
    rows = rows_for(30)
    run_import(rights_file(rows), insurer, tmp_path)
    adherent = open_ended(rows, 1, min_members=2)[0]
    members = [row for row in rows if row[ADHERENT] == adherent]
    for row in members:
        row[C_STATUS] = "suspended"
    _run, summary = run_import(rights_file(rows), insurer, tmp_path)
    assert summary.updated == len(members)  # each row carries its contract's fields
    assert summary.unchanged == len(rows) - len(members)
    assert Contract.objects.get(insurer=insurer, adherent_number=adherent).status == "suspended"


# ---------------------------------------------------------------------------------------------- full


def test_full_ends_absent_contracts_and_beneficiaries(insurer, rows_for, rights_file, tmp_path):
    rows = rows_for(120)
    run_import(rights_file(rows), insurer, tmp_path)
    gone = open_ended(rows, 1, min_members=2)[0]
    family = open_ended(rows, 1, min_members=3, skip={gone})[0]
    left = next(row for row in rows if row[ADHERENT] == family and row[QUALITY] != "ASSURE")
    left_key = (family, int(left[MEMBER]))
    kept = [row for row in without(rows, {gone}) if row is not left]
    gone_members = [row for row in rows if row[ADHERENT] == gone]

    run, summary = run_import(rights_file(kept), insurer, tmp_path, mode="full")

    assert summary.contracts_ended == 1
    assert summary.ended == len(gone_members) + 1
    assert (summary.unchanged, summary.created, summary.updated) == (len(kept), 0, 0)
    contract = Contract.objects.get(insurer=insurer, adherent_number=gone)
    assert (contract.status, contract.end_date) == (Contract.Status.TERMINATED, YESTERDAY)
    assert not contract.is_open_on(TODAY)
    stored = beneficiary_by_key(insurer)
    for row in gone_members:
        assert stored[(gone, int(row[MEMBER]))].coverage_end == YESTERDAY
    assert stored[left_key].coverage_end == YESTERDAY
    assert not stored[left_key].is_covered_on(TODAY)
    assert stored[left_key].is_covered_on(YESTERDAY) or stored[left_key].coverage_start > YESTERDAY
    family_contract = Contract.objects.get(insurer=insurer, adherent_number=family)
    assert family_contract.status == Contract.Status.ACTIVE  # a contract still in the file stays open
    for row in kept:  # everything listed is untouched
        assert stored[(row[ADHERENT], int(row[MEMBER]))].coverage_end == (
            dt.date.fromisoformat(row[COV_END]) if row[COV_END] else None
        )
    assert Beneficiary.objects.filter(contract__insurer=insurer).count() == len(rows)  # ended, not deleted
    assert run.counts["contracts_ended"] == 1

    # the same full file again: nothing more to end
    _run, again = run_import(rights_file(kept), insurer, tmp_path, mode="full")
    assert (again.ended, again.contracts_ended, again.unchanged) == (0, 0, len(kept))


def test_full_keeps_an_earlier_end_date(insurer, rows_for, rights_file, tmp_path):
    rows = rows_for(120)
    adherent = next(
        a for a, m in contracts_of(rows).items() if m[0][C_STATUS] == "active" and m[0][C_END] == "2026-12-31"
    )
    for row in rows:
        if row[ADHERENT] == adherent:
            row[C_END] = row[COV_END] = "2026-06-30"
    run_import(rights_file(rows), insurer, tmp_path)
    _run, summary = run_import(rights_file(without(rows, {adherent})), insurer, tmp_path, mode="full")
    assert summary.contracts_ended == 1
    contract = Contract.objects.get(insurer=insurer, adherent_number=adherent)
    assert contract.status == Contract.Status.TERMINATED
    assert contract.end_date == dt.date(2026, 6, 30)  # already over: not moved to yesterday
    assert {b.coverage_end for b in contract.beneficiaries.all()} == {dt.date(2026, 6, 30)}


def _open_count(rows):
    return sum(1 for members in contracts_of(rows).values() if members[0][C_STATUS] != "terminated")


@pytest.mark.parametrize("share", [0.10, 0.25])
def test_full_threshold(insurer, rows_for, rights_file, tmp_path, settings, share):
    settings.REMPART_FULL_IMPORT_MAX_END_SHARE = share
    rows = rows_for(150)
    run_import(rights_file(rows), insurer, tmp_path)
    open_contracts = _open_count(rows)
    allowed = int(open_contracts * share)
    candidates = open_ended(rows, allowed + 1)

    # one contract more than the share: refused, nothing changed, the refusal recorded
    before = registry_state()
    with pytest.raises(FileRefused, match="force") as info:
        run_import(rights_file(without(rows, set(candidates))), insurer, tmp_path, mode="full")
    assert f"{allowed + 1} of {open_contracts}" in str(info.value)
    assert registry_state() == before
    assert ImportRun.objects.order_by("-pk").first().status == ImportRun.Status.REFUSED

    # exactly the share: allowed
    _run, summary = run_import(
        rights_file(without(rows, set(candidates[:allowed]))), insurer, tmp_path, mode="full"
    )
    assert summary.contracts_ended == allowed


def test_full_threshold_can_be_forced(insurer, rows_for, rights_file, tmp_path):
    rows = rows_for(60)
    run_import(rights_file(rows), insurer, tmp_path)
    contracts = list(contracts_of(rows))
    keep = set(contracts[:2])
    half = [row for row in rows if row[ADHERENT] in keep]
    with pytest.raises(FileRefused):
        run_import(rights_file(half), insurer, tmp_path, mode="full")
    run, summary = run_import(rights_file(half), insurer, tmp_path, mode="full", force=True)
    assert run.status == ImportRun.Status.SUCCEEDED
    ended = Contract.objects.filter(insurer=insurer, status=Contract.Status.TERMINATED, end_date=YESTERDAY)
    assert summary.contracts_ended == ended.count() > 0
    assert (
        set(
            Contract.objects.filter(insurer=insurer)
            .exclude(status="terminated")
            .values_list("adherent_number", flat=True)
        )
        <= keep
    )


def test_full_does_not_end_a_contract_whose_rows_were_rejected(insurer, rows_for, rights_file, tmp_path):
    rows = rows_for(80)
    run_import(rights_file(rows), insurer, tmp_path)
    adherent = open_ended(rows, 1, min_members=2)[0]
    other = open_ended(rows, 1, min_members=2, skip={adherent})[0]
    changed = [list(row) for row in rows]
    for row in changed:
        if row[ADHERENT] == adherent:
            row[BIRTH] = "1980-13-01"  # every row of this contract rejected
    one_bad = next(row for row in changed if row[ADHERENT] == other and row[QUALITY] != "ASSURE")
    one_bad[NIR], one_bad[OD_NIR] = "185077512345600", ""  # one beneficiary's row rejected
    before = snapshot(insurer)

    run, summary = run_import(rights_file(changed), insurer, tmp_path, mode="full")

    members = sum(1 for row in rows if row[ADHERENT] == adherent)
    assert summary.rejected == members + 1
    assert (summary.ended, summary.contracts_ended) == (0, 0)
    assert Contract.objects.get(insurer=insurer, adherent_number=adherent).status == "active"
    assert snapshot(insurer) == before


def test_full_with_an_unreadable_rejected_row_ends_nothing(insurer, rows_for, rights_file, tmp_path):
    rows = rows_for(80)
    run_import(rights_file(rows), insurer, tmp_path)
    gone = open_ended(rows, 1)[0]
    changed = [list(row) for row in without(rows, {gone})]
    changed[0][ADHERENT] = "?"  # whose row is this? it might be the absent contract's
    run, summary = run_import(rights_file(changed), insurer, tmp_path, mode="full")
    assert summary.rejected == 1
    assert (summary.ended, summary.contracts_ended) == (0, 0)
    assert summary.warnings
    assert run.notes == [{"code": "unreadable_adherents", "count": 1}]
    assert "n'a mis fin à rien" in run.notes_text()[0]
    assert Contract.objects.get(insurer=insurer, adherent_number=gone).status == "active"


def test_contract_ended_by_a_full_import_is_reactivated(insurer, rows_for, rights_file, tmp_path):
    rows = rows_for(80)
    run_import(rights_file(rows), insurer, tmp_path)
    gone = open_ended(rows, 1, min_members=2)[0]
    members = [row for row in rows if row[ADHERENT] == gone]
    before = {k: v for k, v in snapshot(insurer).items() if k[0] == gone}
    run_import(rights_file(without(rows, {gone})), insurer, tmp_path, mode="full")
    assert Contract.objects.get(insurer=insurer, adherent_number=gone).status == "terminated"

    _run, summary = run_import(rights_file(rows), insurer, tmp_path, mode="delta")

    assert summary.updated == len(members)
    assert summary.unchanged == len(rows) - len(members)
    contract = Contract.objects.get(insurer=insurer, adherent_number=gone)
    assert (contract.status, contract.end_date) == ("active", None)
    assert contract.is_open_on(TODAY)
    after = {k: v for k, v in snapshot(insurer).items() if k[0] == gone}
    assert {k: v[:3] for k, v in after.items()} == {k: v[:3] for k, v in before.items()}
    _run, again = run_import(rights_file(rows), insurer, tmp_path, mode="full")
    assert (again.unchanged, again.updated, again.ended, again.contracts_ended) == (len(rows), 0, 0, 0)


def test_beneficiary_ended_by_a_full_import_comes_back(insurer, rows_for, rights_file, tmp_path):
    rows = rows_for(40)
    run_import(rights_file(rows), insurer, tmp_path)
    family = open_ended(rows, 1, min_members=2)[0]
    left = next(row for row in rows if row[ADHERENT] == family and row[QUALITY] != "ASSURE")
    key = (family, int(left[MEMBER]))
    run_import(rights_file([r for r in rows if r is not left]), insurer, tmp_path, mode="full")
    assert beneficiary_by_key(insurer)[key].coverage_end == YESTERDAY
    _run, summary = run_import(rights_file(rows), insurer, tmp_path, mode="full")
    assert (summary.updated, summary.ended) == (1, 0)
    assert beneficiary_by_key(insurer)[key].coverage_end is None


def test_full_leaves_other_insurers_alone(insurer, rows_for, rights_file, tmp_path):
    from rempart.registry import synthetic
    from rempart.registry.models import Insurer
    from rempart.registry.products_import import import_products

    other = Insurer.objects.create(amc_number="222222222", name="Other", kind="mutuelle")
    products = tmp_path / "other-products.csv"
    products.write_text(synthetic.products_file_text(other.amc_number), encoding="utf-8")
    import_products(products, other)
    other_rows = [[other.amc_number, *row[1:]] for row in rows_for(20)]
    run_import(rights_file(other_rows, amc=other.amc_number), other, tmp_path)
    rows = rows_for(20)
    run_import(rights_file(rows), insurer, tmp_path)
    before = {
        (b.contract_id, b.member_number, b.coverage_end)
        for b in Beneficiary.objects.filter(contract__insurer=other)
    }

    _run, summary = run_import(rights_file(rows), insurer, tmp_path, mode="full")

    assert (summary.ended, summary.contracts_ended) == (0, 0)
    after = {
        (b.contract_id, b.member_number, b.coverage_end)
        for b in Beneficiary.objects.filter(contract__insurer=other)
    }
    assert after == before
    assert not Contract.objects.filter(insurer=other, status="terminated", end_date=YESTERDAY).exists()


# ---------------------------------------------------------------------------------------------- dry run


def test_dry_run_changes_nothing_but_reports_counts(insurer, rows_for, rights_file, tmp_path):
    rows = rows_for(60)
    run_import(rights_file(rows[:40]), insurer, tmp_path)
    rows[0][FIRST] = "Gaspard"
    rows[1][BIRTH] = "1980-13-01"
    gone = open_ended(rows[:40], 1, skip={rows[0][ADHERENT], rows[1][ADHERENT]})[0]
    gone_rows = [row for row in rows if row[ADHERENT] == gone]
    offered = without(rows, {gone})
    before = registry_state()

    run, summary = run_import(rights_file(offered), insurer, tmp_path, mode="full", dry_run=True)

    assert registry_state() == before
    assert run.status == ImportRun.Status.DRY_RUN
    assert summary.dry_run
    assert summary.rows_read == len(offered)
    assert summary.created == 20
    assert summary.updated == 1
    assert summary.rejected == 1
    assert summary.unchanged == len(offered) - 22
    assert (summary.contracts_ended, summary.ended) == (1, len(gone_rows))
    assert [line for line, _c, _r in read_errors(run)] == [4]
    assert "SIMULATION" in summary.as_text()


def test_dry_run_of_a_refused_file_raises(insurer, rows_for, rights_file, tmp_path):
    with pytest.raises(FileRefused):
        run_import(rights_file(rows_for(5), trailer=4), insurer, tmp_path, dry_run=True)
    assert not Contract.objects.exists()


# ---------------------------------------------------------------------------------------------- NIRs


def test_child_with_only_the_ouvrant_droit_nir(insurer, rows_for, rights_file, tmp_path):
    rows = rows_for(80)
    child = next(row for row in rows if not row[NIR] and row[OD_NIR])
    parent = next(row for row in rows if row[ADHERENT] == child[ADHERENT] and row[NIR] == child[OD_NIR])
    sibling = next(row for row in rows if row[ADHERENT] != child[ADHERENT] and row[NIR])
    _run, summary = run_import(rights_file(rows), insurer, tmp_path)
    assert summary.rejected == 0
    stored = beneficiary_by_key(insurer)
    kid = stored[(child[ADHERENT], int(child[MEMBER]))]
    assert kid.nir_cipher is None and kid.nir_index is None
    assert kid.od_nir_cipher is not None
    assert card_nir_matches(kid, child[OD_NIR])  # the child is seen on the parent's carte Vitale
    assert not card_nir_matches(kid, sibling[NIR])
    adult = stored[(parent[ADHERENT], int(parent[MEMBER]))]
    assert card_nir_matches(adult, parent[NIR])
    assert not card_nir_matches(adult, sibling[NIR])
    assert not card_nir_matches(adult, "")
    assert not card_nir_matches(kid, "")


def test_nir_is_stored_encrypted_and_decrypts(insurer, rows_for, rights_file, tmp_path):
    from rempart.lib.crypto import field_cipher

    rows = rows_for(10)
    run_import(rights_file(rows), insurer, tmp_path)
    stored = beneficiary_by_key(insurer)
    cipher = field_cipher()
    for row in rows:
        b = stored[(row[ADHERENT], int(row[MEMBER]))]
        if row[NIR]:
            assert cipher.decrypt("nir", b.nir_cipher) == row[NIR]
            assert row[NIR].encode() not in bytes(b.nir_cipher)
        if row[OD_NIR]:
            assert cipher.decrypt("nir", b.od_nir_cipher) == row[OD_NIR]


def test_lunar_birth_date_is_kept(insurer, rows_for, rights_file, tmp_path):
    rows = rows_for(3)
    rows[0][BIRTH] = "1950-00-00"
    rows[1][BIRTH] = "1950-07-00"
    run_import(rights_file(rows), insurer, tmp_path)
    stored = beneficiary_by_key(insurer)
    assert str(birth_date_of(stored[(rows[0][ADHERENT], 1)])) == "1950-00-00"
    assert birth_date_of(stored[(rows[0][ADHERENT], 1)]).is_lunar
    assert str(birth_date_of(stored[(rows[1][ADHERENT], int(rows[1][MEMBER]))])) == "1950-07-00"


def test_full_with_an_unreadable_member_number_ends_no_one_of_that_contract(
    insurer, rows_for, rights_file, tmp_path
):
    rows = rows_for(60)
    run_import(rights_file(rows), insurer, tmp_path)
    family = open_ended(rows, 1, min_members=3)[0]
    members = [row for row in rows if row[ADHERENT] == family]
    absent = members[-1]  # this member leaves the file...
    unreadable = members[1]  # ...and another member's row cannot be read: it might be the absent one's
    changed = [list(row) for row in rows if row is not absent]
    for row in changed:
        if row == unreadable:
            row[MEMBER] = "deux"
    run, summary = run_import(rights_file(changed), insurer, tmp_path, mode="full")
    assert summary.rejected == 1
    assert (summary.ended, summary.contracts_ended) == (0, 0)
    assert beneficiary_by_key(insurer)[(family, int(absent[MEMBER]))].coverage_end == (
        dt.date.fromisoformat(absent[COV_END]) if absent[COV_END] else None
    )


def test_first_full_load_has_no_threshold(insurer, rows_for, rights_file, tmp_path):
    _run, summary = run_import(rights_file(rows_for(30)), insurer, tmp_path, mode="full")
    assert (summary.created, summary.ended, summary.contracts_ended) == (30, 0, 0)
