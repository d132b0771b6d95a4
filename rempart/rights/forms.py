"""The counter form: typed fast, in the French way (dates JJ/MM/AAAA, NIR with or without spaces)."""

from __future__ import annotations

import re

from django import forms
from django.utils.translation import gettext_lazy as _

from rempart.accounts.forms import NoEchoTextInput
from rempart.registry.models import CareDomain

_FR_DATE = re.compile(r"^\s*(\d{2})[/.\- ]?(\d{2})[/.\- ]?(\d{4})\s*$")


def french_to_iso(text: str) -> str:
    """JJ/MM/AAAA (00 allowed for an unknown day or month) → AAAA-MM-JJ; ISO passes through."""
    match = _FR_DATE.match(text or "")
    if match:
        day, month, year = match.groups()
        return f"{year}-{month}-{day}"
    return (text or "").strip()


class RightsCheckForm(forms.Form):
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
