"""Signed anchors, kept outside the database, catch what the chains cannot: a cut tail, a wiped chain."""

import base64
import json
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command
from django.utils import timezone

from rempart.incidents import workflow
from rempart.incidents.scope import ScopeCriteria
from rempart.ledger import anchors, chain
from rempart.ledger.models import ChainHead, LedgerAnchor, VerificationRun

from .tamper import append, cut_tail, longest_chain, raw, wipe


@pytest.fixture
def anchor_dir(settings) -> Path:
    return Path(settings.REMPART_LEDGER_ANCHOR_DIR)


@pytest.fixture
def insurer_copy(tmp_path):
    """What an insurer kept: a copy of every anchor published so far, outside the platform."""

    def copy() -> Path:
        target = tmp_path / "insurer"
        target.mkdir(exist_ok=True)
        for anchor in LedgerAnchor.objects.all():
            (target / f"anchor-{anchor.number}.json").write_text(anchor.document)
        return target

    return copy


def _documents(directory: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(directory.glob("anchor-*.json"))]


def test_an_anchor_signs_every_head_into_its_own_file_beside_the_public_key(db, anchor_dir, capsys):
    append(12)
    call_command("ledger", "anchor")
    assert "Anchor #1 signed: 12 rows in 16 chains" in capsys.readouterr().out
    (document,) = _documents(anchor_dir)
    heads = {h.chain: (h.seq, bytes(h.last_hash).hex()) for h in ChainHead.objects.all()}
    assert {c["chain"]: (c["seq"], c["hash"]) for c in document["chains"]} == heads and len(heads) == 16
    (pem,) = anchor_dir.glob("public-key-*.pem")
    key = anchors.read_public_key(pem)
    key.verify(base64.b64decode(document["signature"]), anchors.canonical(document))  # raises if it does not
    assert pem.name == f"public-key-{document['key_id']}.pem"
    assert json.loads(LedgerAnchor.objects.get().document) == document
    append(1)
    call_command("ledger", "anchor")
    assert [d["number"] for d in _documents(anchor_dir)] == [1, 2]


def test_an_anchor_file_is_never_overwritten(tmp_path):
    anchors._write_once(tmp_path, "anchor-000001-x.json", b"first")
    with pytest.raises(FileExistsError):
        anchors._write_once(tmp_path, "anchor-000001-x.json", b"second")
    assert (tmp_path / "anchor-000001-x.json").read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["anchor-000001-x.json"]  # no temporary file left


def test_a_cut_tail_with_its_head_rewound_is_caught(db, insurer_copy, capsys):
    append(40)
    call_command("ledger", "anchor")
    victim = longest_chain()
    anchored_seq = ChainHead.objects.get(chain=victim).seq
    cut_tail(victim, anchored_seq - 2)
    assert chain.verify().ok  # the chain alone cannot see it

    with pytest.raises(CommandError):
        call_command("ledger", "verify")  # every run checks the newest local anchor
    assert (
        f"BROKEN chain {victim}: the head is at seq {anchored_seq - 2}, behind anchor #1"
        in capsys.readouterr().out
    )
    with pytest.raises(CommandError):
        call_command("ledger", "verify", "--against-published", str(insurer_copy()))
    out = capsys.readouterr().out
    assert f"chain {victim}: the row at seq {anchored_seq} (anchor #1 of" in out and "is gone" in out


def test_a_wiped_chain_with_its_head_reset_is_caught_even_with_the_local_anchors_gone(
    db, anchor_dir, insurer_copy, capsys
):
    append(40)
    call_command("ledger", "anchor")
    kept = insurer_copy()
    victim = longest_chain()
    wipe(victim)
    shutil.rmtree(anchor_dir)  # whoever wiped the chain also removed the platform's own copies
    LedgerAnchor.objects.all().delete()
    assert chain.verify().ok
    call_command("ledger", "verify")  # nothing left on the platform to compare with...
    with pytest.raises(CommandError):  # ...but the insurer's copy remains
        call_command("ledger", "verify", "--against-published", str(kept))
    assert f"BROKEN chain {victim}: the head is at seq 0, behind anchor #1" in capsys.readouterr().out


def test_a_forged_anchor_is_refused(db, anchor_dir, insurer_copy, tmp_path, capsys):
    append(20)
    call_command("ledger", "anchor")
    document = _documents(anchor_dir)[0]
    document["chains"][0]["seq"] += 5  # pretend more rows were anchored: the signature no longer matches
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(document))
    with pytest.raises(CommandError):
        call_command("ledger", "verify", "--against-published", str(forged))
    assert "forged.json: the signature does not verify" in capsys.readouterr().out

    other = Ed25519PrivateKey.generate()
    document = _documents(anchor_dir)[0]
    document["key_id"] = anchors.key_id(other.public_key())
    document["signature"] = base64.b64encode(other.sign(anchors.canonical(document))).decode()
    forged.write_text(json.dumps(document))
    with pytest.raises(CommandError):
        call_command("ledger", "verify", "--against-published", str(forged))
    assert "signed with an unknown key" in capsys.readouterr().out
    pem = tmp_path / "previous.pem"
    pem.write_text(anchors.public_key_pem(other.public_key()))
    # Trusted once its key is given (a previous key, after a rotation).
    call_command("ledger", "verify", "--against-published", str(forged), "--public-key", str(pem))

    (anchor_dir / "anchor-000009-20260101T000000Z.json").write_text(
        forged.read_text().replace('"seq": 0', '"seq": 1')
    )
    with pytest.raises(CommandError):  # a bad file in the platform's own directory fails every run
        call_command("ledger", "verify")


def test_an_anchored_row_rewritten_in_place_is_caught(db, insurer_copy, capsys):
    """Even by someone holding the chain key, who can make the chain verify again: the anchored hash differs."""
    append(20)
    call_command("ledger", "anchor")
    victim = longest_chain()
    head = ChainHead.objects.get(chain=victim)
    raw(
        "UPDATE ledger_disclosure SET row_hash = %s WHERE chain = %s AND seq = %s",
        [bytes(32), victim, head.seq],
    )
    ChainHead.objects.filter(chain=victim).update(last_hash=bytes(32))
    with pytest.raises(CommandError):
        call_command("ledger", "verify", "--against-published", str(insurer_copy()))
    assert f"chain {victim}: the row at seq {head.seq} (anchor #1" in capsys.readouterr().out


def test_no_anchor_is_signed_over_heads_behind_the_last_one(db, anchor_dir, capsys):
    append(30)
    call_command("ledger", "anchor")
    victim = longest_chain()
    cut_tail(victim, ChainHead.objects.get(chain=victim).seq - 1)
    with pytest.raises(CommandError):
        call_command("ledger", "anchor")
    assert f"BROKEN chain {victim}: the head" in capsys.readouterr().out
    assert LedgerAnchor.objects.count() == 1 and len(_documents(anchor_dir)) == 1
    refusal = VerificationRun.objects.get()
    assert refusal.kind == "anchor" and not refusal.ok  # the ledger now counts as altered

    call_command(
        "ledger", "anchor", "--accept-break", "rows lost in the restore of 2026-12-01, see INC-00007"
    )
    newest = _documents(anchor_dir)[-1]
    assert newest["number"] == 2 and newest["accepted_break"].startswith("rows lost")
    assert any(f"chain {victim}" in line for line in newest["problems_accepted"])


def test_a_head_behind_its_checkpoint_is_not_anchored(db):
    append(30)
    call_command("ledger", "verify")
    victim = longest_chain()
    cut_tail(victim, ChainHead.objects.get(chain=victim).seq - 1)
    with pytest.raises(anchors.AnchorRefused) as refused:
        anchors.sign_heads("command")
    assert any("behind its checkpoint" in line for line in refused.value.problems)


def test_the_directory_and_the_database_must_hold_the_same_anchors(db, anchor_dir, capsys):
    append(5)
    call_command("ledger", "anchor")
    call_command("ledger", "anchor")
    next(anchor_dir.glob("anchor-000001-*.json")).unlink()
    with pytest.raises(CommandError):
        call_command("ledger", "verify")
    assert "anchor #1 is in the database but not in" in capsys.readouterr().out


def test_a_freeze_signs_an_anchor(db, anchor_dir):
    append(5)
    incident = workflow.open_incident(title="Jeton divulgué", detected_at=timezone.now())
    workflow.attach_scope(incident, ScopeCriteria(organisation_ids=(1,)), label="org")
    anchor = LedgerAnchor.objects.get()
    assert anchor.trigger == "scope_freeze" and len(_documents(anchor_dir)) == 1
    assert incident.timeline.get(action="scope").detail.endswith(
        f"registre intègre ; ancre n° {anchor.number} signée"
    )
    call_command("ledger", "verify", "--against-published")  # the directory itself, signatures and rows
    heads = {c["chain"]: c["seq"] for c in json.loads(anchor.document)["chains"]}
    assert sum(heads.values()) == 5  # every row the scope was computed from


def test_public_key_command_prints_the_key_insurers_check_with(db, capsys):
    call_command("ledger", "public-key")
    out = capsys.readouterr().out
    assert (
        out.startswith("-----BEGIN PUBLIC KEY-----")
        and f"key id {anchors.key_id(anchors.public_key())}" in out
    )


def test_a_bad_signing_key_stops_with_a_clear_message(settings):
    from django.core.exceptions import ImproperlyConfigured

    anchors.signing_key.cache_clear()
    settings.REMPART_LEDGER_SIGNING_KEY = "not base64!"
    try:
        with pytest.raises(ImproperlyConfigured, match="REMPART_LEDGER_SIGNING_KEY"):
            anchors.signing_key()
    finally:
        anchors.signing_key.cache_clear()


def test_an_anchor_swapped_in_the_database_is_caught(db, capsys):
    append(5)
    call_command("ledger", "anchor")
    append(5)
    call_command("ledger", "anchor")
    first, second = LedgerAnchor.objects.order_by("number")
    LedgerAnchor.objects.filter(pk=second.pk).update(
        document=first.document.replace('"number": 1', '"number": 2')
    )
    with pytest.raises(CommandError):
        call_command("ledger", "verify")
    out = capsys.readouterr().out
    assert "database anchor #2: the signature does not verify" in out or "anchor #2 differs" in out


def test_routine_runs_read_only_the_newest_anchor_and_complete_runs_read_them_all(db, anchor_dir, capsys):
    for _ in range(3):
        append(4)
        call_command("ledger", "anchor")
    call_command("ledger", "verify")
    oldest = next(anchor_dir.glob("anchor-000001-*.json"))
    oldest.write_text(oldest.read_text().replace('"trigger": "command"', '"trigger": "scope_freeze"'))
    call_command("ledger", "verify", "--incremental")  # a routine run signs-checks the newest anchor only...
    next(anchor_dir.glob("anchor-000002-*.json")).unlink()
    with pytest.raises(CommandError):  # ...but compares every number of both copies
        call_command("ledger", "verify", "--incremental")
    assert "anchor #2 is in the database but not in" in capsys.readouterr().out
    with pytest.raises(CommandError):  # a complete run checks every signature
        call_command("ledger", "verify")
    assert f"{oldest.name}: the signature does not verify" in capsys.readouterr().out
