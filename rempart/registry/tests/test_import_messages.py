"""The imports store codes, and word them when shown: every code raised has words in French and English, with
its parameters; an older run's sentence is shown as it is; an unknown code never shows itself."""

import ast
import re
from pathlib import Path

import pytest
from django.utils import translation

from rempart.registry import import_messages as im
from rempart.registry.rights_format import RowError
from rempart.registry.rights_import import FileRefused

REGISTRY = Path(__file__).resolve().parents[1]
SOURCES = ("rights_format.py", "rights_import.py", "rights_staging.py", "products_import.py")
PARAMS = re.compile(r"%\((\w+)\)s")


def _raised_codes() -> dict[str, set[str]]:
    """The codes the import modules raise or report: RowError(column, code), FileRefused(code), entry(code)."""
    found: dict[str, set[str]] = {"row": set(), "file": set()}
    for name in SOURCES:
        tree = ast.parse((REGISTRY / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            callee = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            strings = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            if callee == "RowError" and len(strings) >= 2:
                found["row"].add(strings[1])
            elif callee in ("FileRefused", "entry") and strings:
                found["file" if callee == "FileRefused" else "row"].add(strings[0])
    found["row"].add("unknown_product")  # rights_staging.UNKNOWN_PRODUCT
    return found


def test_every_code_raised_has_words():
    raised = _raised_codes()
    assert len(raised["row"]) > 20 and len(raised["file"]) > 8  # the scan does find them
    known = set(im.ROW_MESSAGES) | set(im.FILE_MESSAGES)
    assert raised["row"] | raised["file"] <= known, (raised["row"] | raised["file"]) - known


@pytest.mark.parametrize("code", sorted(set(im.ROW_MESSAGES) | set(im.FILE_MESSAGES)))
def test_every_code_is_worded_in_french_and_english_with_its_parameters(code):
    template = str({**im.ROW_MESSAGES, **im.FILE_MESSAGES}[code])
    params = {name: f"<{name}>" for name in PARAMS.findall(template)}
    french = im.describe(im.entry(code, **params), "fr")
    english = im.describe(im.entry(code, **params), "en")
    assert french and english and french != str(im.UNKNOWN) and english != "unrecognised reason"
    if "_" in code:  # a code (a word of its own) never stands for its words
        assert code not in french and code not in english
    assert all(value in french and value in english for value in params.values())
    if PARAMS.sub("", template).strip(" .,:;()'«»%-") and code != "nir_invalid":
        assert french != english, code  # translated, not the French left in the English page


def test_exceptions_carry_the_code_and_speak_english_for_logs():
    error = RowError("birth_date", "day_impossible")
    assert error.message == {"code": "day_impossible"} and error.reason == "impossible day"
    assert str(error) == "birth_date: impossible day"
    refused = FileRefused("trailer_count", trailer="#end", announced="12", found=11)
    assert str(refused) == "truncated or altered: the '#end' line announces 12 rows, the file has 11"
    with translation.override("fr"):
        assert refused.describe() == (
            "fichier tronqué ou altéré : la ligne « #end » annonce 12 lignes, le fichier en a 11"
        )


def test_older_texts_are_shown_as_they_are_and_unknown_codes_never_show():
    assert im.describe("wrong check key") == "wrong check key"
    assert im.describe_all("first warning\nsecond") == ["first warning", "second"]
    with translation.override("fr"):
        assert im.describe({"code": "no_such_code"}) == "motif non reconnu"
        assert im.describe({"code": "integer_range"}) == "motif non reconnu"  # parameters missing
    assert im.from_csv("nir_checksum", "") == {"code": "nir_checksum"}
    assert im.from_csv("duplicate_member", '{"first": 3}') == {"code": "duplicate_member", "first": 3}
    assert im.from_csv("x", "not json") == {"code": "x"}
