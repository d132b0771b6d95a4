"""The shop's invoice forms (from a PEC, or plain), the Factures filters, and the operator's review decision.

Card fields check their own format one by one, so that every bad field is shown at once; the invoice's own
rules (rempart.claims.invoice_checks) run in the view and land on the same fields. Money is typed in euros
("30,00" or "30.00") and read into integer cents, never through a float.
"""

from __future__ import annotations

import datetime as dt
import re

from django import forms
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from rempart.accounts.forms import NoEchoTextInput
from rempart.claims.models import Claim
from rempart.claims.reasons import TABLE, Kind
from rempart.lib.identifiers import InvalidIdentifier, LunarDate, validate_amc_number, validate_nir
from rempart.registry.models import CareDomain
from rempart.rights.forms import french_to_iso

LINES = 8  # lines of the plain invoice form
CODE_SYSTEMS = [("LPP", "LPP"), ("CIP13", "CIP13"), ("NGAP", "NGAP"), ("CCAM", "CCAM"), ("OTHER", _("Autre"))]
CLASSES = [("", "—"), ("A", "A"), ("B", "B"), ("I", "I"), ("II", "II")]
SIDES = [("", "—"), ("right", _("droit")), ("left", _("gauche"))]
CARD_FIELDS = ("amc_number", "adherent_number", "nir", "birth_date", "birth_rank")
# Line fields of the plain form, and the invoice field each one feeds (rules.InvoiceLine).
LINE_FIELDS = {
    "code_system": "code_system",
    "code": "code",
    "lpp_class": "lpp_class",
    "side": "side",
    "quantity": "quantity",
    "unit_price": "unit_price_cents",
    "base": "base_cents",
    "amo_paid": "amo_paid_cents",
    "amc_claimed": "amc_claimed_cents",
}
_ADHERENT = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,19}$")  # as rempart.rights.cards reads it
_EUROS = re.compile(r"^(\d{1,9})(?:[.,](\d{1,2}))?$")
_SPACES = str.maketrans("", "", " \u00a0\u202f€")
DATE_ATTRS = {
    "inputmode": "numeric",
    "autocomplete": "off",
    "data-mask": "date",
    "placeholder": _("JJ/MM/AAAA"),
}
MONEY_ATTRS = {"inputmode": "decimal", "autocomplete": "off", "size": 8, "placeholder": "0,00"}


def parse_euros(text: str) -> int:
    """ "1 234,50", "1234.5" or "12 €" → cents; at most two decimals, never rounded."""
    match = _EUROS.match((text or "").translate(_SPACES))
    if not match:
        raise forms.ValidationError(_("montant en euros attendu, par exemple 30,00"))
    whole, decimals = match.groups()
    return int(whole) * 100 + int((decimals or "0").ljust(2, "0"))


def euros_text(cents: int) -> str:
    """Cents as the person types them back: 3050 → "30,50" (French) or "30.50" (English)."""
    separator = "." if (get_language() or "fr").startswith("en") else ","
    return f"{cents // 100}{separator}{cents % 100:02d}"


class EurosField(forms.CharField):
    """An amount in euros, cleaned to integer cents; an int initial value is shown in euros."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("max_length", 16)
        kwargs.setdefault("widget", forms.TextInput(attrs=MONEY_ATTRS))
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, int) and not isinstance(value, bool):
            return euros_text(value)
        return value

    def clean(self, value):
        text = super().clean(value)  # the text's own checks (required, length) first
        return None if text in self.empty_values else parse_euros(text)


class FrenchDateField(forms.CharField):
    """JJ/MM/AAAA (or AAAA-MM-JJ), cleaned to a date; a date initial value is shown as JJ/MM/AAAA."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("max_length", 10)
        kwargs.setdefault("widget", forms.TextInput(attrs=DATE_ATTRS))
        super().__init__(**kwargs)

    def prepare_value(self, value):
        return value.strftime("%d/%m/%Y") if isinstance(value, dt.date) else value

    def clean(self, value):
        text = super().clean(value)
        if text in self.empty_values:
            return None
        try:
            return dt.date.fromisoformat(french_to_iso(text))
        except ValueError:
            raise forms.ValidationError(_("date au format JJ/MM/AAAA")) from None


def _no_echo(attrs: dict | None = None) -> NoEchoTextInput:
    return NoEchoTextInput(attrs={"autocomplete": "off", **(attrs or {})})


class InvoiceForm(forms.Form):
    """An invoice as the shop types it. ``pec_lines`` (the PEC's lines): only what the AMO paid and what is
    claimed are typed per line, the rest comes from the PEC on the server; otherwise up to LINES free lines.

    The card data are never written back into the page (an error page, a shared screen), except the
    adherent number, which is the field most often mistyped.
    """

    amc_number = forms.CharField(
        label=_("Numéro AMC"), max_length=9,
        widget=_no_echo({"inputmode": "numeric", "autofocus": True, "placeholder": "123456789"}),
    )  # fmt: skip
    adherent_number = forms.CharField(
        label=_("Numéro d'adhérent"), max_length=24, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )
    nir = forms.CharField(
        label=_("NIR (carte Vitale, clé comprise)"), max_length=21,
        widget=_no_echo({"data-mask": "nir", "placeholder": "_ __ __ __ ___ ___ __"}),
    )  # fmt: skip
    birth_date = forms.CharField(label=_("Date de naissance"), max_length=10, widget=_no_echo(DATE_ATTRS))
    birth_rank = forms.CharField(
        label=_("Rang de naissance"), max_length=1, required=False,
        help_text=_("Seulement si le NIR est celui de l'ouvrant droit (jumeaux : 2, 3…)."),
        widget=_no_echo({"inputmode": "numeric", "placeholder": "1", "size": 2}),
    )  # fmt: skip
    invoice_number = forms.CharField(
        label=_("Numéro de facture"), max_length=40, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )
    invoice_date = FrenchDateField(label=_("Date de facture"))
    care_date = FrenchDateField(label=_("Date des soins"))
    prescriber_rpps = forms.CharField(
        label=_("Prescripteur (RPPS)"), max_length=14, required=False,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )  # fmt: skip

    def __init__(self, *args, domains: list[str] | None = None, pec_lines: list | None = None, **kwargs):
        """``domains``: the plain form's care domains (any domain is still accepted when posted, so that the
        gate refuses and records a forged one rather than the form)."""
        super().__init__(*args, **kwargs)
        self.pec_lines = pec_lines
        if pec_lines is not None:
            for n in range(1, len(pec_lines) + 1):
                self.fields[f"line{n}_amo_paid"] = EurosField(label=_("Payé par l'AMO (€)"))
                self.fields[f"line{n}_amc_claimed"] = EurosField(label=_("Demandé à l'AMC (€)"))
            self._name_line_fields()
            return
        self.fields["domain"] = forms.ChoiceField(label=_("Domaine"), choices=CareDomain.choices)
        self.fields["domain"].widget.choices = [
            (v, lbl) for v, lbl in CareDomain.choices if v in (domains or [])
        ]
        self.order_fields([*CARD_FIELDS, "domain"])
        for n in range(1, LINES + 1):
            self.fields[f"line{n}_code_system"] = forms.ChoiceField(
                label=_("Système"), choices=[("", "—"), *CODE_SYSTEMS], required=False
            )
            self.fields[f"line{n}_code"] = forms.CharField(
                label=_("Code"), max_length=20, required=False, widget=forms.TextInput(attrs={"size": 13})
            )
            self.fields[f"line{n}_lpp_class"] = forms.ChoiceField(
                label=_("Classe"), choices=CLASSES, required=False
            )
            self.fields[f"line{n}_side"] = forms.ChoiceField(label=_("Côté"), choices=SIDES, required=False)
            self.fields[f"line{n}_quantity"] = forms.IntegerField(
                label=_("Qté"), min_value=1, max_value=999, required=False,
                widget=forms.NumberInput(attrs={"size": 3, "min": 1}),
            )  # fmt: skip
            self.fields[f"line{n}_unit_price"] = EurosField(label=_("Prix unitaire (€)"), required=False)
            self.fields[f"line{n}_base"] = EurosField(label=_("BR (€)"), required=False)
            self.fields[f"line{n}_amo_paid"] = EurosField(label=_("Payé par l'AMO (€)"), required=False)
            self.fields[f"line{n}_amc_claimed"] = EurosField(label=_("Demandé à l'AMC (€)"), required=False)
        self._name_line_fields()

    def _name_line_fields(self) -> None:
        """A line's inputs sit in a table under one header row: each says its line to a screen reader."""
        for name, field in self.fields.items():
            if name.startswith("line"):
                n = name[4:].split("_", 1)[0]
                field.widget.attrs["aria-label"] = f"{_('Ligne %(n)s') % {'n': n}} — {field.label}"

    # --- card data: each field on its own, so that all bad ones are shown together

    def clean_amc_number(self) -> str:
        try:
            return validate_amc_number(self.cleaned_data["amc_number"].strip())
        except InvalidIdentifier:
            raise forms.ValidationError(_("le numéro AMC compte 9 chiffres")) from None

    def clean_adherent_number(self) -> str:
        value = self.cleaned_data["adherent_number"].strip().upper().replace(" ", "")
        if not _ADHERENT.match(value):
            raise forms.ValidationError(_("1 à 20 lettres, chiffres ou tirets"))
        return value

    def clean_nir(self) -> str:
        try:
            return validate_nir(self.cleaned_data["nir"])
        except InvalidIdentifier as exc:
            if "check key" in str(exc):
                raise forms.ValidationError(
                    _("la clé du NIR ne correspond pas (vérifiez la saisie)")
                ) from None
            raise forms.ValidationError(
                _("NIR à 15 caractères, clé comprise (2A/2B pour la Corse)")
            ) from None

    def clean_birth_date(self) -> str:
        text = french_to_iso(self.cleaned_data["birth_date"])
        try:
            LunarDate.parse(text)
        except ValueError:
            raise forms.ValidationError(
                _("date de naissance au format %(format)s (00 si jour ou mois inconnus)")
                % {"format": _("JJ/MM/AAAA")}
            ) from None
        return text

    def clean_birth_rank(self) -> int:
        text = (self.cleaned_data["birth_rank"] or "").strip()
        if not text:
            return 1
        if not text.isdecimal() or not 1 <= int(text) <= 9:
            raise forms.ValidationError(_("rang de naissance de 1 à 9"))
        return int(text)

    # --- lines

    def line_numbers(self) -> list[int]:
        """The plain form's lines the person filled (by their code), in order."""
        if self.pec_lines is not None:
            return list(range(1, len(self.pec_lines) + 1))
        data = self.cleaned_data
        return [n for n in range(1, LINES + 1) if (data.get(f"line{n}_code") or "").strip()]

    def clean(self):
        data = super().clean()
        if self.pec_lines is not None:
            return data
        filled = self.line_numbers()
        if not filled and not any(self.has_error(f"line{n}_code") for n in range(1, LINES + 1)):
            raise forms.ValidationError(_("Saisissez au moins une ligne de facture."))
        required = ("code_system", "quantity", "unit_price", "base", "amo_paid", "amc_claimed")
        for n in filled:
            for name in required:
                field = f"line{n}_{name}"
                if data.get(field) is None or data.get(field) == "":
                    if not self.has_error(field):
                        self.add_error(field, _("requis"))
        return data

    def pec_rows(self) -> list[tuple]:
        """The PEC's lines, each with its two inputs (what the AMO paid, what is claimed), for the template."""
        return [
            (n, line, self[f"line{n}_amo_paid"], self[f"line{n}_amc_claimed"])
            for n, line in enumerate(self.pec_lines or (), start=1)
        ]

    def rows(self) -> list[list[forms.BoundField]]:
        """The plain form's line fields, for the template's table."""
        return [[self[f"line{n}_{name}"] for name in LINE_FIELDS] for n in range(1, LINES + 1)]

    def focus_first_error(self) -> None:
        """Put the cursor on the first bad field (in the page's order), not on the first field."""
        self.fields["amc_number"].widget.attrs.pop("autofocus", None)
        for name in self.fields:
            if self.has_error(name):
                self.fields[name].widget.attrs["autofocus"] = True
                return


# ---------------------------------------------------------------------------------------------- Factures


class ClaimFilterForm(forms.Form):
    """Filters of the Factures page (GET): status, a date range on the care or received date, a number."""

    status = forms.ChoiceField(
        label=_("Statut"), required=False, choices=[("", _("Tous")), *Claim.Status.choices]
    )
    date_field = forms.ChoiceField(
        label=_("Dates"), required=False,
        choices=[("care", _("des soins")), ("received", _("de réception"))],
    )  # fmt: skip
    since = FrenchDateField(label=_("Du"), required=False)
    until = FrenchDateField(label=_("Au"), required=False)
    q = forms.CharField(label=_("Numéro de facture"), max_length=40, required=False)


# ---------------------------------------------------------------------------------------------- review

DECISIONS = [("accept", _("Accepter")), ("reduce", _("Réduire")), ("reject", _("Rejeter"))]
# The reason codes a reviewer may give (rempart.claims.reasons), by decision: accepting says which anomaly
# was checked; reducing and rejecting give the same codes the rules would have given.
_BY_KIND = {kind: [str(code) for code, (k, _fr, _en) in TABLE.items() if k == kind] for kind in Kind}
REVIEW_REASONS = {
    "accept": _BY_KIND[Kind.REVIEW],
    "reduce": _BY_KIND[Kind.REDUCTION],
    "reject": _BY_KIND[Kind.REJECTION],
}


def reason_choices(label_of) -> list:
    """Grouped choices for the reason select; ``label_of(code)`` gives the label in the reader's language."""
    groups = [
        (_("Acceptation : anomalie vérifiée"), "accept"),
        (_("Réduction"), "reduce"),
        (_("Rejet"), "reject"),
    ]
    return [("", "—")] + [(title, [(c, label_of(c)) for c in REVIEW_REASONS[key]]) for title, key in groups]


class ReviewForm(forms.Form):
    """The reviewer's decision: accept the proposal, reduce it to an amount, or reject; a reason and a note."""

    decision = forms.ChoiceField(label=_("Décision"), choices=DECISIONS, widget=forms.RadioSelect)
    amount = EurosField(label=_("Montant accepté (€), pour une réduction"), required=False)
    reason = forms.ChoiceField(label=_("Motif"))
    note = forms.CharField(
        label=_("Commentaire"), max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args, proposed_cents: int, label_of, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.proposed_cents = proposed_cents
        self.fields["reason"].choices = reason_choices(label_of)

    def clean(self):
        data = super().clean()
        decision, reason = data.get("decision"), data.get("reason")
        if decision and reason and reason not in REVIEW_REASONS[decision]:
            self.add_error("reason", _("ce motif ne correspond pas à la décision choisie"))
        if decision == "reduce":
            amount = data.get("amount")
            if amount is None:
                if not self.has_error("amount"):
                    self.add_error("amount", _("montant requis pour une réduction"))
            elif amount > self.proposed_cents:
                self.add_error("amount", _("au plus le montant proposé par les règles"))
        return data
