"""The counter form: typed fast, in the French way (dates JJ/MM/AAAA, NIR with or without spaces).

Every field checks its own format, so that all the bad fields of one submission are shown together (not
one per round trip); a date that is well typed but does not exist is called so ("le 31/02/2026 n'existe
pas"), not reported as a format error. The cross-field checks of ``rempart.rights.cards`` run after.
"""

from __future__ import annotations

import datetime as dt
import re

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from rempart.accounts.forms import NoEchoTextInput
from rempart.lib.identifiers import InvalidIdentifier, validate_amc_number, validate_nir
from rempart.registry.models import CareDomain

_FR_DATE = re.compile(r"^\s*(\d{2})[/.\- ]?(\d{2})[/.\- ]?(\d{4})\s*$")
_ISO_DATE = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})\s*$")
_ADHERENT = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,19}$")  # as rempart.rights.cards reads it
CARD_FIELDS = ("amc_number", "adherent_number", "nir", "birth_date", "birth_rank")


def french_to_iso(text: str) -> str:
    """JJ/MM/AAAA (00 allowed for an unknown day or month) → AAAA-MM-JJ; ISO passes through."""
    match = _FR_DATE.match(text or "")
    if match:
        day, month, year = match.groups()
        return f"{year}-{month}-{day}"
    return (text or "").strip()


def parse_french_date(text: str, *, unknown_parts: bool = False) -> str:
    """A typed date (JJ/MM/AAAA, JJMMAAAA or AAAA-MM-JJ) → AAAA-MM-JJ, or a ValidationError that says what is
    wrong: the format, or a day that does not exist in that month. ``unknown_parts``: a birth date, where 00
    stands for a day or month the civil registry does not know."""
    fr, iso = _FR_DATE.match(text or ""), _ISO_DATE.match(text or "")
    if fr:
        day, month, year = (int(part) for part in fr.groups())
    elif iso:
        year, month, day = (int(part) for part in iso.groups())
    else:
        raise forms.ValidationError(gettext("date au format JJ/MM/AAAA"), code="format")
    if unknown_parts and (month == 0 and day == 0 or month and 1 <= month <= 12 and day == 0):
        return f"{year:04d}-{month:02d}-{day:02d}"
    try:
        dt.date(year, month, day)
    except ValueError:
        raise forms.ValidationError(
            gettext("le %(date)s n'existe pas") % {"date": f"{day:02d}/{month:02d}/{year:04d}"},
            code="invalid",
        ) from None
    return f"{year:04d}-{month:02d}-{day:02d}"


class CounterFormMixin:
    """What the two counter forms (rights check, PEC) share after an error: the cursor on the first bad field,
    and every error listed at once above the form, each linked to its field."""

    first_field = "amc_number"

    def focus_first_error(self) -> None:
        self.fields[self.first_field].widget.attrs.pop("autofocus", None)
        for name in self.fields:
            if self.has_error(name):
                self.fields[name].widget.attrs["autofocus"] = True
                return
        self.fields[self.first_field].widget.attrs["autofocus"] = True

    def error_summary(self) -> list[tuple[str, str]]:
        """(the bad field's id or "", "its label: the message"), in the page's order."""
        summary = [("", str(message)) for message in self.non_field_errors()]
        for name, field in self.fields.items():
            if self.has_error(name):
                title = field.widget.attrs.get("aria-label") or field.label
                summary.extend((self[name].id_for_label, f"{title} : {m}") for m in self.errors[name])
        return summary


class RightsCheckForm(CounterFormMixin, forms.Form):
    amc_number = forms.CharField(
        label=_("Numéro AMC"),
        max_length=9,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off", "autofocus": True, "pattern": r"\d{9}", "placeholder": "123456789"}),
    )  # fmt: skip
    adherent_number = forms.CharField(
        label=_("Numéro d'adhérent"), max_length=24, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )
    nir = forms.CharField(
        label=_("NIR (carte Vitale, clé comprise)"),
        max_length=21,
        widget=NoEchoTextInput(attrs={"inputmode": "text", "autocomplete": "off", "data-mask": "nir", "placeholder": "_ __ __ __ ___ ___ __"}),
    )  # fmt: skip
    birth_date = forms.CharField(
        label=_("Date de naissance"),
        max_length=10,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off", "data-mask": "date", "placeholder": _("JJ/MM/AAAA")}),
    )  # fmt: skip
    birth_rank = forms.IntegerField(
        label=_("Rang de naissance"), min_value=1, max_value=9, initial=1, required=False,
        help_text=_("Seulement si le NIR est celui de l'ouvrant droit (jumeaux : 2, 3…)."),
    )  # fmt: skip
    domain = forms.ChoiceField(label=_("Domaine"), choices=CareDomain.choices)
    care_date = forms.CharField(
        label=_("Date des soins"),
        max_length=10,
        required=False,
        help_text=_("Aujourd'hui si vide."),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off", "data-mask": "date", "placeholder": _("JJ/MM/AAAA")}),
    )  # fmt: skip

    def __init__(self, *args, domains: list[str] | None = None, **kwargs) -> None:
        """``domains``: the organisation's care domains, the only ones offered. Any domain is still accepted
        from a posted form, so that the gate refuses (and records) a forged one rather than the form."""
        super().__init__(*args, **kwargs)
        if domains:
            self.fields["domain"].widget.choices = [
                (v, label) for v, label in CareDomain.choices if v in domains
            ]

    # --- each card field on its own (the messages of rempart.rights.cards, which never repeat the value)

    def clean_amc_number(self) -> str:
        try:
            return validate_amc_number(self.cleaned_data["amc_number"].strip())
        except InvalidIdentifier:
            raise forms.ValidationError(gettext("le numéro AMC compte 9 chiffres")) from None

    def clean_adherent_number(self) -> str:
        value = self.cleaned_data["adherent_number"].strip().upper().replace(" ", "")
        if not _ADHERENT.match(value):
            raise forms.ValidationError(gettext("1 à 20 lettres, chiffres ou tirets"))
        return value

    def clean_nir(self) -> str:
        try:
            return validate_nir(self.cleaned_data["nir"])
        except InvalidIdentifier as exc:
            if "check key" in str(exc):
                message = gettext("la clé du NIR ne correspond pas (vérifiez la saisie)")
            else:
                message = gettext("NIR à 15 caractères, clé comprise (2A/2B pour la Corse)")
            raise forms.ValidationError(message) from None

    def clean_birth_date(self) -> str:
        iso = parse_french_date(self.cleaned_data["birth_date"], unknown_parts=True)
        if int(iso[:4]) < 1880:
            raise forms.ValidationError(gettext("année de naissance invraisemblable"))
        if iso.replace("-00", "-01") > timezone.localdate().isoformat():
            raise forms.ValidationError(gettext("la date de naissance est dans le futur"))
        return iso

    def clean_care_date(self) -> str:
        text = (self.cleaned_data.get("care_date") or "").strip()
        if not text:
            return ""
        iso = parse_french_date(text)
        check_care_date(dt.date.fromisoformat(iso))
        return iso


def check_care_date(care: dt.date) -> None:
    """The rights check answers for today or the last REMPART_RIGHTS_MAX_PAST_DAYS days (rights.cards)."""
    today = timezone.localdate()
    if care > today:
        raise forms.ValidationError(gettext("la date des soins ne peut pas être dans le futur"))
    if care < today - dt.timedelta(days=settings.REMPART_RIGHTS_MAX_PAST_DAYS):
        raise forms.ValidationError(
            gettext("la date des soins ne peut pas remonter à plus de %(days)s jours")
            % {"days": settings.REMPART_RIGHTS_MAX_PAST_DAYS}
        )


DATE_ATTRS = {
    "inputmode": "numeric",
    "autocomplete": "off",
    "data-mask": "date",
    "placeholder": _("JJ/MM/AAAA"),
}


class CounterDateField(forms.CharField):
    """A JJ/MM/AAAA date of a search form, cleaned to a date (None when empty)."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("max_length", 10)
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.TextInput(attrs=dict(DATE_ATTRS)))
        super().__init__(**kwargs)

    def clean(self, value):
        text = super().clean(value)
        return None if text in self.empty_values else dt.date.fromisoformat(parse_french_date(text))


class HistorySearchForm(forms.Form):
    """The search of a counter history (GET): a reference, one day, or a period (both ends included)."""

    q = forms.CharField(
        label=_("Référence"), max_length=40, required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "class": "ref", "placeholder": "RC-… / PEC-…"}),
    )  # fmt: skip
    day = CounterDateField(label=_("Le"))
    since = CounterDateField(label=_("Du"))
    until = CounterDateField(label=_("Au"))

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", gettext("la fin de la période précède son début"))
        return data

    def apply(self, rows, *, on: str, references: tuple[str, ...]):
        """``rows`` narrowed to what was asked: ``on`` the datetime field, ``references`` the fields searched."""
        from django.db.models import Q

        if not self.is_valid():
            return rows.none()
        data = self.cleaned_data
        text = data["q"].strip().replace(" ", "")
        if text:
            query = Q()
            for name in references:
                query |= Q(**{f"{name}__icontains": text})
            rows = rows.filter(query)
        if data["day"]:
            rows = rows.filter(**{f"{on}__date": data["day"]})
        if data["since"]:
            rows = rows.filter(**{f"{on}__date__gte": data["since"]})
        if data["until"]:
            rows = rows.filter(**{f"{on}__date__lte": data["until"]})
        return rows

    @property
    def active(self) -> bool:
        return any((self.data.get(name) or "").strip() for name in self.fields)
