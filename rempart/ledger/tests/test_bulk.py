"""Rows appended in bulk (rempart.ledger.bulk.append_same) are rows like any other: they chain and they verify."""

import re

import pytest
from django.db import connection, transaction

from rempart.ledger import bulk, chain
from rempart.ledger.models import Disclosure

COMMON = {
    "channel": Disclosure.Channel.CLI, "purpose": "billing", "organisation_id": 7, "user_id": None,
    "token_id": None, "session_ref": "billing:REL-1", "ip_address": "203.0.113.9", "insurer_id": 3,
    "outcome": Disclosure.Outcome.LISTED, "fields": ["adherent_number", "member_rank", "billing_detail:REL-1"],
    "domain": "OPTI",
}  # fmt: skip


def test_bulk_rows_chain_after_single_rows_and_verify(db):
    with transaction.atomic():
        first = chain.append(
            channel="api", purpose="rights_check", organisation_id=1, outcome="no_match", fields=[]
        )
        written = bulk.append_same(COMMON, [{"beneficiary_id": pk} for pk in range(1, 2_501)])
        last = chain.append(
            channel="api", purpose="rights_check", organisation_id=1, outcome="no_match", fields=[]
        )
    assert written == 2_500
    rows = list(Disclosure.objects.filter(purpose="billing").order_by("seq"))
    assert [r.beneficiary_id for r in rows] == list(range(1, 2_501))
    assert {r.chain for r in rows} == {first.chain} == {last.chain}  # one transaction, one chain head
    assert [r.seq for r in rows] == list(
        range(first.seq + 1, first.seq + 2_501)
    ) and last.seq == first.seq + 2_501
    assert bytes(rows[0].prev_hash) == bytes(first.row_hash)
    for row in rows[:50] + rows[-50:]:
        assert chain.row_hash(row, bytes(row.prev_hash)) == bytes(row.row_hash)
        assert row.fields == COMMON["fields"] and row.ip_address == "203.0.113.9" and row.domain == "OPTI"
        assert row.hash_version == chain.CURRENT_HASH_VERSION
    assert all(re.fullmatch(r"RC-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}", r.reference) for r in rows)
    assert len({r.reference for r in rows}) == len(rows)
    report = chain.verify()
    assert report.ok and report.rows == 2_502


def test_an_altered_bulk_row_is_found(db):
    with transaction.atomic():
        bulk.append_same(COMMON, [{"beneficiary_id": pk} for pk in range(1, 101)])
    victim = Disclosure.objects.filter(purpose="billing").order_by("seq")[40]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE ledger_disclosure DISABLE TRIGGER USER")
            cursor.execute("UPDATE ledger_disclosure SET beneficiary_id = 999 WHERE id = %s", [victim.pk])
            cursor.execute("ALTER TABLE ledger_disclosure ENABLE TRIGGER USER")
        else:
            cursor.execute("DROP TRIGGER ledger_disclosure_no_update")
            cursor.execute("UPDATE ledger_disclosure SET beneficiary_id = 999 WHERE id = %s", [victim.pk])
    report = chain.verify()
    assert not report.ok and any(
        f"seq {victim.seq} ({victim.reference}) was altered" in b for b in report.broken
    )


def test_text_values_are_escaped_for_copy(db):
    odd = {**COMMON, "session_ref": "a\tb\\c\nd", "fields": ["x\ty", "é\\"]}
    with transaction.atomic():
        bulk.append_same(odd, [{"beneficiary_id": 1}, {"beneficiary_id": None}])
    rows = list(Disclosure.objects.filter(purpose="billing").order_by("seq"))
    assert [r.session_ref for r in rows] == ["a\tb\\c\nd"] * 2 and rows[0].fields == ["x\ty", "é\\"]
    assert rows[1].beneficiary_id is None
    assert chain.verify().ok


def test_refusals(transactional_db):
    with pytest.raises(RuntimeError):
        bulk.append_same(COMMON, [{"beneficiary_id": 1}])
    with transaction.atomic():
        with pytest.raises(ValueError):
            bulk.append_same(COMMON, [{"insurer_id": 1}])  # common and varying at once
        with pytest.raises(ValueError):
            bulk.append_same(COMMON, [{"seq": 1}])  # the chain's own
        assert bulk.append_same(COMMON, []) == 0
