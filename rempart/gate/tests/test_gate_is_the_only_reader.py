"""Architecture: only the recording gate reads a beneficiary's personal fields.

Any module that reaches beneficiaries (names ``Beneficiary``, ``beneficiaries`` or the table
``registry_beneficiary``) and also names one of these fields (``.nir_index``, ``values("last_name")``,
raw SQL mentioning ``birth_day``) fails this test unless it is in the allowed list. Modules that
never reach beneficiaries may use the same words for what a professional typed (``birth_rank``). The allowed writers
(the import and the generator put data in; key rotation re-encrypts without disclosing) are listed
with their reason; adding a module to the list is a reviewed decision.
"""

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2]
PERSONAL_FIELDS = {
    "nir_cipher", "nir_index", "od_nir_cipher", "od_nir_index", "last_name", "first_name",
    "birth_year", "birth_month", "birth_day", "birth_rank", "sex", "quality",
}  # fmt: skip
ALLOWED = {
    "gate/core.py": "the recording gate itself: the lookup",
    "gate/pec.py": "the recording gate: what a PEC decision needs (birth date)",
    "gate/batch.py": "the recording gate: the lookup of a chunk of cards (invoice lots)",
    "registry/models.py": "the fields' definitions",
    "registry/rights_format.py": "reads insurers' files (writes, never discloses)",
    "registry/rights_import.py": "loads insurers' files (writes, never discloses)",
    "registry/rights_staging.py": "loads insurers' files (writes, never discloses)",
    "registry/synthetic.py": "generates synthetic people (writes)",
    "registry/key_rotation.py": "re-encrypts NIRs under a new key (never discloses)",
    "surveillance/canaries.py": "plants synthetic canary people through the import (writes)",
    "surveillance/lookalike.py": "learns the insurer's distributions to draw canaries like its people (never discloses)",
}
TOKENS = re.compile(r"__|[^A-Za-z0-9_]+")  # lookups like beneficiaries__nir_index split into their parts
REACHES_BENEFICIARIES = re.compile(r"\b(Beneficiary|beneficiaries|registry_beneficiary)\b")


def _offending_names(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in PERSONAL_FIELDS:
            found.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.update(t for t in TOKENS.split(node.value) if t in PERSONAL_FIELDS)
        elif isinstance(node, ast.keyword) and node.arg:
            found.update(t for t in node.arg.split("__") if t in PERSONAL_FIELDS)
    return found


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if (
            "/tests/" in f"/{relative}"
            or "/migrations/" in relative
            or relative in ("testing.py", "conftest.py")
        ):
            continue
        yield relative, path


def test_only_the_gate_reads_beneficiaries_personal_fields():
    offenders = {}
    for relative, path in _modules():
        if relative in ALLOWED:
            continue
        source = path.read_text(encoding="utf-8")
        if not REACHES_BENEFICIARIES.search(source):
            continue
        names = _offending_names(ast.parse(source))
        if names:
            offenders[relative] = sorted(names)
    assert not offenders, f"personal fields read outside the gate: {offenders}"


def test_the_scan_does_catch_a_reader():
    assert REACHES_BENEFICIARIES.search("from rempart.registry.models import Beneficiary")
    sneaky = ast.parse(
        'b = Beneficiary.objects.values("last_name")\nprint(b.nir_index)\nB.objects.filter(birth_day__gt=1)'
    )
    assert _offending_names(sneaky) == {"last_name", "nir_index", "birth_day"}
    through_contract = ast.parse(
        'Contract.objects.filter(beneficiaries__nir_index=x).values("beneficiaries__last_name")'
    )
    assert _offending_names(through_contract) == {"nir_index", "last_name"}


def test_allowed_modules_exist():
    missing = [name for name in ALLOWED if not (PACKAGE / name).exists()]
    assert not missing or missing == ["registry/rights_staging.py"], missing
