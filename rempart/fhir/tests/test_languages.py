"""OperationOutcome texts are French by default and English with ``Accept-Language: en``, as the JSON API's:
every sentence in rempart/fhir is a msgid makemessages finds, with an English translation."""

import ast
import re
from pathlib import Path

import pytest
from django.utils import translation

from rempart.fhir import systems
from rempart.fhir.tests import resources
from rempart.ledger.models import Disclosure

from .conftest import CER
from .test_eligibility import card
from .test_hostile import _set, outcome

PATIENT = "Bundle.entry[1].resource"
SOURCES = sorted(Path(__file__).resolve().parent.parent.glob("*.py"))
MARKERS = {"_", "gettext", "gettext_noop", "gettext_lazy"}
# The functions that take a sentence, and the position of that argument: a bare literal there would be
# translated at render but never extracted, so it would read in French whatever the language asked.
TAKES_A_MESSAGE = {"invalid": 0, "not_supported": 0, "Issue": 2}
PLACEHOLDER = re.compile(r"%\(\w+\)s")

# (hostile change to a good rights-check Bundle, expression, French text, English text)
CASES = [
    (
        _set("entry.1.resource.contained", [{"resourceType": "Patient"}]),
        f"{PATIENT}.contained",
        "les ressources contenues (contained) ne sont pas acceptées",
        "contained resources are not accepted",
    ),
    (
        _set("entry.1.resource.name", [{"family": "Testeur"}]),
        f"{PATIENT}.name",
        "élément non pris en charge par Rempart",
        "element not supported by Rempart",
    ),
    (
        _set("entry.2.resource.resourceType", "Patient"),
        "Bundle.entry[2].resource.resourceType",
        "ressource inattendue dans ce Bundle",
        "unexpected resource in this Bundle",
    ),
    (  # a sentence built at render, with its placeholder
        _set("entry.1.resource.identifier.0.system", "urn:oid:1.2.3"),
        f"{PATIENT}.identifier[0].system",
        f"système d'identifiant attendu : {systems.NIR} (NIR)",
        f"identifier system expected: {systems.NIR} (NIR)",
    ),
    (  # the model library's refusal, never its English: Rempart's sentence
        _set("entry.1.resource.nir", "x"),
        f"{PATIENT}.nir",
        "élément inconnu de FHIR R4",
        "element unknown to FHIR R4",
    ),
]


@pytest.mark.parametrize(("change", "expression", "french", "english"), CASES, ids=[c[2] for c in CASES])
def test_a_hostile_resource_is_refused_in_the_language_asked(fhir, family, token_for, change, expression,
                                                             french, english):  # fmt: skip
    raw = token_for("rights:check")
    bundle = resources.changed(resources.eligibility(card(family)), change)

    responses = {
        "en": fhir(CER, raw, bundle, lang="en"),
        "fr": fhir(CER, raw, bundle),  # no Accept-Language: French
        "fr-FR": fhir(CER, raw, bundle, lang="fr-FR,fr;q=0.9"),
    }
    for language, response in responses.items():
        issue = outcome(response, 400)["issue"][0]
        expected = english if language == "en" else french
        assert issue["details"]["text"] == expected, (language, issue)
        assert issue["expression"] == [expression]
        assert response["Content-Language"] == language[:2]
    codes = {tuple(r.json()["issue"][0]["details"]["coding"][0].items()) for r in responses.values()}
    assert len(codes) == 1  # the code never changes with the language
    assert not Disclosure.objects.exists()


def test_a_session_without_language_then_english_does_not_keep_the_previous_language(fhir, family, token_for):
    """gettext's language is per request: an English answer does not leak into the next French one."""
    raw = token_for("rights:check")
    bundle = resources.changed(resources.eligibility(card(family)), _set("type", "transaction"))
    assert outcome(fhir(CER, raw, bundle, lang="en"), 400)["issue"][0]["details"]["text"] == (
        "Bundle of type collection expected"
    )
    assert outcome(fhir(CER, raw, bundle), 400)["issue"][0]["details"]["text"] == (
        "Bundle de type collection attendu"
    )


def _messages() -> tuple[dict[str, list[str]], list[str]]:
    """Every msgid in rempart/fhir (where it is), and every sentence passed without a marker."""
    found: dict[str, list[str]] = {}
    unmarked: list[str] = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name in MARKERS and node.args:
                argument = node.args[0]
                if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                    found.setdefault(argument.value, []).append(f"{path.name}:{node.lineno}")
            elif name in TAKES_A_MESSAGE and len(node.args) > TAKES_A_MESSAGE[name]:
                argument = node.args[TAKES_A_MESSAGE[name]]
                if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                    unmarked.append(f"{path.name}:{node.lineno} {argument.value!r}")
    return found, unmarked


def test_every_sentence_is_marked_for_extraction():
    found, unmarked = _messages()
    assert not unmarked, unmarked
    assert len(found) >= 60  # the scan does see the module's messages (about 67 today)
    assert "ressource inattendue dans ce Bundle" in found


def test_every_sentence_has_an_english_translation():
    found, _unmarked = _messages()
    missing, mismatched = [], []
    with translation.override("en"):
        for msgid, where in sorted(found.items()):
            english = translation.gettext(msgid)
            if english == msgid:
                missing.append(f"{where[0]} {msgid!r}")
            elif sorted(PLACEHOLDER.findall(english)) != sorted(PLACEHOLDER.findall(msgid)):
                mismatched.append(f"{where[0]} {msgid!r} → {english!r}")
    assert not missing, missing
    assert not mismatched, mismatched
    with translation.override("fr"):  # and French stays the msgid itself
        assert all(translation.gettext(msgid) == msgid for msgid in found)
