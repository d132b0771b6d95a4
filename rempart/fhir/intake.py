"""What a FHIR request may carry before anything is looked up: size, media type, JSON, shape, the Bundle.

Hostile input is refused here, cheaply and before the model library sees it: a body above the limit (413),
another media type (415), JSON that does not parse or repeats a key (400), too many nodes or entries
(400 ``too_complex``), contained resources, modifier extensions, primitive extensions and any extension
not listed by the operation (400 ``not_supported``). Then the Bundle goes through fhir.resources' R4B
models: what they refuse is a 400 naming the element (FHIRPath-like ``expression``), in French or English,
never the model library's English.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from rempart.api_validation import message_for
from rempart.fhir.outcome import FhirError, Issue, invalid, not_supported

MEDIA_TYPES = ("application/fhir+json", "application/json")
MAX_NODES = 5000  # JSON values in one body: a PEC with ten lines is about 400
MAX_ENTRIES = 6  # the largest operation needs four
_FULL_URL = re.compile(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def read_json(request: HttpRequest, limit: int) -> object:
    """The body as JSON: 415 for another media type, 413 above ``limit`` bytes (never read past it), 400 if
    it does not parse or repeats a key (two parsers could read such a body differently)."""
    media_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if media_type not in MEDIA_TYPES:
        raise FhirError(
            415,
            Issue(
                "not-supported",
                "unsupported_media_type",
                lambda: _("Content-Type: %(expected)s attendu") % {"expected": "application/fhir+json"},
            ),
        )
    try:
        announced = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        announced = 0
    too_large = FhirError(
        413,
        Issue(
            "too-long",
            "too_large",
            lambda: _("corps de requête trop volumineux (au plus %(limit)s octets)") % {"limit": limit},
        ),
    )
    if announced > limit:
        raise too_large
    body = request.read(limit + 1)
    if len(body) > limit:
        raise too_large
    try:
        return json.loads(body, object_pairs_hook=_no_repeated_keys)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the interpreter takes
        raise FhirError(
            400, Issue("structure", "malformed_body", gettext_noop("corps JSON illisible"))
        ) from None


class _RepeatedKey(ValueError):
    pass


def _no_repeated_keys(pairs: list[tuple[str, object]]) -> dict:
    data = dict(pairs)
    if len(data) != len(pairs):
        raise _RepeatedKey("repeated key")
    return data


def scan(data: object, allowed_extensions: dict[re.Pattern, frozenset[str]] | None = None) -> None:
    """Refuse what Rempart never takes, wherever it is: contained resources, modifier extensions, primitive
    extensions (``_element``), extensions other than the operation's own, and bodies of too many nodes."""
    allowed_extensions = allowed_extensions or {}
    nodes = 0
    stack: list[tuple[str, object]] = [("Bundle", data)]
    while stack:
        path, value = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise FhirError(
                400, Issue("too-long", "too_complex", gettext_noop("trop d'éléments dans la requête"))
            )
        if isinstance(value, dict):
            for key, child in value.items():
                where = f"{path}.{key}"
                if key == "contained":
                    raise not_supported(
                        gettext_noop("les ressources contenues (contained) ne sont pas acceptées"), where
                    )
                if key == "modifierExtension":
                    raise not_supported(gettext_noop("extension modificatrice inconnue de Rempart"), where)
                if key.startswith("_"):
                    raise not_supported(
                        gettext_noop("extension d'élément primitif inconnue de Rempart"), where
                    )
                if key == "extension":
                    _check_extensions(where, child, allowed_extensions)
                    continue  # an allowed extension holds a url and a value, nothing to scan further
                stack.append((where, child))
        elif isinstance(value, list):
            stack.extend((f"{path}[{index}]", child) for index, child in enumerate(value))


def _check_extensions(path: str, extensions: object, allowed: dict[re.Pattern, frozenset[str]]) -> None:
    urls = next((urls for pattern, urls in allowed.items() if pattern.fullmatch(path)), frozenset())
    if not isinstance(extensions, list):
        raise invalid(gettext_noop("liste attendue"), path, "structure", "structure")
    for index, extension in enumerate(extensions):
        where = f"{path}[{index}]"
        url = extension.get("url") if isinstance(extension, dict) else None
        if not isinstance(url, str) or url not in urls:
            raise not_supported(gettext_noop("extension inconnue de Rempart"), where)
        if set(extension) != {"url", "valueMoney"}:
            raise not_supported(gettext_noop("extension : url et valueMoney seulement"), where)


# --- the Bundle ---------------------------------------------------------------------------------------------


@dataclass
class Entry:
    index: int
    full_url: str
    raw: dict
    model: object

    @property
    def path(self) -> str:
        return f"Bundle.entry[{self.index}].resource"


@dataclass
class Entries:
    """The Bundle's resources by type (each at most once) and by fullUrl."""

    by_type: dict[str, Entry] = field(default_factory=dict)

    def get(self, resource_type: str) -> Entry | None:
        return self.by_type.get(resource_type)

    def resolve(self, reference: object, expected: str, path: str) -> Entry:
        """The entry a ``{"reference": "urn:uuid:…"}`` names, of the expected type (400 otherwise)."""
        target = getattr(reference, "reference", None) if reference is not None else None
        for entry in self.by_type.values():
            if entry.full_url == target:
                if entry.raw.get("resourceType") != expected:
                    raise invalid(
                        gettext_noop("la référence désigne une ressource d'un autre type"),
                        f"{path}.reference",
                    )
                return entry
        raise not_supported(
            gettext_noop("référence attendue vers une entrée du Bundle (urn:uuid:…)"),
            f"{path}.reference" if target else path,
        )


def bundle(data: object, first: str, others: Iterable[str]) -> Entries:
    """A Bundle of type collection: ``first`` as its first entry, then each of ``others`` at most once, every
    entry with a ``urn:uuid:`` fullUrl; validated whole by fhir.resources (400 naming the element)."""
    if not isinstance(data, dict):
        raise invalid(gettext_noop("objet JSON attendu"), None, "structure", "structure")
    if data.get("resourceType") != "Bundle":
        raise invalid(
            lambda: (
                _("ressource Bundle (type collection) attendue, %(first)s en première entrée")
                % {"first": first}
            ),
            "Bundle.resourceType",
        )
    allowed = {"resourceType", "id", "meta", "type", "entry"}
    only(data, allowed, "Bundle")
    raw_entries = data.get("entry")
    if not isinstance(raw_entries, list) or not raw_entries:
        raise invalid(gettext_noop("au moins une entrée attendue"), "Bundle.entry", code="required")
    if len(raw_entries) > MAX_ENTRIES:
        raise FhirError(
            400,
            Issue("too-long", "too_complex", gettext_noop("trop d'entrées dans le Bundle"), "Bundle.entry"),
        )
    kinds = {first, *others}
    seen: dict[str, int] = {}
    urls = set()
    for index, raw in enumerate(raw_entries):  # before the model library: it must only meet known types
        path = f"Bundle.entry[{index}]"
        if not isinstance(raw, dict):
            raise invalid(gettext_noop("objet JSON attendu"), path, "structure", "structure")
        only(raw, {"fullUrl", "resource"}, path)
        resource = raw.get("resource")
        if not isinstance(resource, dict):
            raise invalid(gettext_noop("ressource attendue"), f"{path}.resource", code="required")
        kind = resource.get("resourceType")
        kind = kind if isinstance(kind, str) else None
        if index == 0 and kind != first:
            raise invalid(
                lambda: _("%(first)s attendu en première entrée du Bundle") % {"first": first},
                f"{path}.resource.resourceType",
            )
        if kind not in kinds or kind in seen:
            raise not_supported(
                gettext_noop("ressource inattendue dans ce Bundle"), f"{path}.resource.resourceType"
            )
        full_url = raw.get("fullUrl")
        if not isinstance(full_url, str) or not _FULL_URL.fullmatch(full_url) or full_url in urls:
            raise invalid(gettext_noop("fullUrl urn:uuid:… unique attendu"), f"{path}.fullUrl")
        urls.add(full_url)
        seen[kind] = index
    try:
        model = Bundle.model_validate(data)
    except ValidationError as exc:
        raise model_error(exc, "Bundle") from None
    except (TypeError, ValueError, LookupError, AttributeError):  # the library's own refusals, not pydantic's
        raise FhirError(
            400, Issue("structure", "structure", gettext_noop("ressource FHIR mal formée"), "Bundle")
        ) from None
    if model.type != "collection":
        raise not_supported(gettext_noop("Bundle de type collection attendu"), "Bundle.type")
    entries = Entries()
    for index, (raw, parsed) in enumerate(zip(raw_entries, model.entry, strict=True)):
        kind = raw["resource"]["resourceType"]
        entries.by_type[kind] = Entry(index, raw["fullUrl"], raw["resource"], parsed.resource)
    return entries


def only(raw: dict, allowed: set[str], path: str) -> None:
    """Refuse an element Rempart does not read (it would be ignored silently otherwise, or carry data we must
    not receive, such as a patient's name)."""
    for key in raw:
        if key not in allowed:
            raise not_supported(gettext_noop("élément non pris en charge par Rempart"), f"{path}.{key}")


def require(raw: dict, names: Iterable[str], path: str) -> None:
    for name in names:
        if raw.get(name) in (None, "", [], {}):
            raise invalid(gettext_noop("élément obligatoire"), f"{path}.{name}", code="required")


def model_error(exc: ValidationError, root: str) -> FhirError:
    """fhir.resources' refusal as one issue per problem (at most ten), each naming its element."""
    issues = []
    for error in exc.errors()[:10]:
        path = root
        for part in error.get("loc", ()):
            path += f"[{part}]" if isinstance(part, int) else f".{part}"
        issues.append(Issue("structure", "structure", _model_message(error), path))
    return FhirError(
        400, issues or [Issue("structure", "structure", gettext_noop("ressource FHIR mal formée"))]
    )


def _model_message(error: dict) -> str:
    """Never the model library's English: a sentence from the error's stable type."""
    kind = str(error.get("type", ""))
    if kind == "extra_forbidden":
        return _("élément inconnu de FHIR R4")
    if kind == "missing":
        return _("élément obligatoire")
    if kind in ("value_error", "assertion_error") or kind.startswith("fhir"):
        return _("valeur non conforme à FHIR R4")
    return message_for(error)
