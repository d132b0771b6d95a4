"""The shop's quote form: the patient's cards (as at the counter), the prescription, up to four quote lines.

The spectacle prescription is a table, as opticians write it: rows OD / OG, columns sphère, cylindre, axe,
addition (rempart.authorizations.spectacles reads it). The inputs of the two tables (prescription, quote
lines) sit under one header row: each carries an aria-label saying its row and column to a screen reader.
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from rempart.authorizations import spectacles
from rempart.rights.forms import RightsCheckForm, parse_french_date

LINES = 4
DATE_ATTRS = {
    "inputmode": "numeric",
    "autocomplete": "off",
    "data-mask": "date",
    "placeholder": _("JJ/MM/AAAA"),
}
EYE_LABELS = {"right": _("OD (œil droit)"), "left": _("OG (œil gauche)")}
PART_LABELS = {
    "sphere": _("sphère"),
    "cylinder": _("cylindre"),
    "axis": _("axe (°)"),
    "addition": _("addition"),
}
PART_PLACEHOLDERS = {"sphere": "-1,25", "cylinder": "-0,50", "axis": "90", "addition": "+2,00"}
LINE_LABELS = {
    "code": _("Code LPP"),
    "class": _("Classe"),
    "side": _("Côté"),
    "quantity": _("Qté"),
    "price": _("Prix unitaire (€)"),
}


class PecForm(RightsCheckForm):
    """The counter's card fields (same masks, NIR never echoed), then what a quote carries."""

    care_date = None  # the delivery date replaces it
    domain = forms.ChoiceField(
        label=_("Domaine"), choices=[("OPTI", _("Optique")), ("AUDI", _("Audiologie"))]
    )
    delivery_date = forms.CharField(
        label=_("Délivrance prévue le"), max_length=10, widget=forms.TextInput(attrs=DATE_ATTRS)
    )
    prescription_date = forms.CharField(
        label=_("Ordonnance du"), max_length=10, widget=forms.TextInput(attrs=DATE_ATTRS)
    )
    prescriber_id = forms.CharField(
        label=_("Prescripteur (RPPS ou n° AM)"),
        max_length=11,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    medical_condition = forms.BooleanField(
        label=_("Pathologie attestée (renouvellement anticipé)"), required=False
    )

    def __init__(self, *args, domains: list[str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if domains:
            self.fields["domain"].choices = [c for c in self.fields["domain"].choices if c[0] in domains]
        for eye in spectacles.EYES:
            for part in spectacles.PARTS:
                label = f"{EYE_LABELS[eye]} — {PART_LABELS[part]}"
                self.fields[f"{eye}_{part}"] = forms.CharField(
                    label=label, required=False, max_length=7,
                    widget=forms.TextInput(attrs={
                        "inputmode": "numeric" if part == "axis" else "decimal", "autocomplete": "off",
                        "placeholder": PART_PLACEHOLDERS[part], "aria-label": label, "size": 6,
                    }),
                )  # fmt: skip
        for n in range(1, LINES + 1):
            self.fields[f"line{n}_code"] = forms.CharField(
                label=LINE_LABELS["code"], required=False, max_length=13
            )
            self.fields[f"line{n}_class"] = forms.ChoiceField(
                label=LINE_LABELS["class"], required=False,
                choices=[("", "—"), ("A", "A"), ("B", "B"), ("I", "I"), ("II", "II")],
            )  # fmt: skip
            self.fields[f"line{n}_side"] = forms.ChoiceField(
                label=LINE_LABELS["side"], required=False,
                choices=[("", _("— (monture)")), ("right", _("droit")), ("left", _("gauche"))],
            )  # fmt: skip
            self.fields[f"line{n}_quantity"] = forms.IntegerField(
                label=LINE_LABELS["quantity"], min_value=1, max_value=2, initial=1, required=False
            )
            self.fields[f"line{n}_price"] = forms.DecimalField(
                label=LINE_LABELS["price"], required=False, min_value=Decimal("0.01"), max_digits=9, decimal_places=2,
                localize=True,
            )  # fmt: skip
            for part in LINE_LABELS:
                field = self.fields[f"line{n}_{part}"]
                field.widget.attrs["aria-label"] = f"{gettext('Ligne %(n)s') % {'n': n}} — {field.label}"

    def eyes(self):
        """[(row label, [bound fields in the column order])] for the prescription table."""
        return [
            (EYE_LABELS[eye], [self[f"{eye}_{part}"] for part in spectacles.PARTS]) for eye in spectacles.EYES
        ]

    def lines(self):
        return [[self[f"line{n}_{part}"] for part in LINE_LABELS] for n in range(1, LINES + 1)]

    def clean_delivery_date(self) -> str:
        return parse_french_date(self.cleaned_data["delivery_date"])

    def clean_prescription_date(self) -> str:
        return parse_french_date(self.cleaned_data["prescription_date"])

    def clean(self):
        data = super().clean()
        for eye in spectacles.EYES:
            row = spectacles.EyeRow(**{part: data.get(f"{eye}_{part}") or "" for part in spectacles.PARTS})
            try:
                data[eye] = spectacles.read_eye(row)
            except spectacles.PrescriptionErrors as exc:
                data[eye] = None
                for part, message in exc.errors.items():
                    self.add_error(f"{eye}_{part}", message)
        filled = [n for n in range(1, LINES + 1) if data.get(f"line{n}_code")]
        if not filled and not any(self.has_error(f"line{n}_code") for n in range(1, LINES + 1)):
            raise forms.ValidationError(gettext("Saisissez au moins une ligne du devis."))
        for n in filled:
            if not data.get(f"line{n}_class") and not self.has_error(f"line{n}_class"):
                self.add_error(f"line{n}_class", gettext("classe requise"))
            if data.get(f"line{n}_price") is None and not self.has_error(f"line{n}_price"):
                self.add_error(f"line{n}_price", gettext("prix requis"))
        return data

    def quote_ready(self) -> bool:
        """Whether the quote's own fields are clean enough to be checked by the PEC rules (the cards aside)."""
        card = {"amc_number", "adherent_number", "nir", "birth_date", "birth_rank"}
        return not any(self.has_error(name) for name in self.fields if name not in card) and not (
            self.non_field_errors()
        )

    # A rules error (rempart.authorizations.rules.check_request) lands on the field it names.
    RULE_FIELDS = {
        "domain": "domain",
        "delivery_date": "delivery_date",
        "prescription.date": "prescription_date",
        "prescription.prescriber_id": "prescriber_id",
        "prescription.right": "right_sphere",
        "prescription.left": "left_sphere",
        "lpp_code": "code",
        "class": "class",
        "side": "side",
        "quantity": "quantity",
        "unit_price_cents": "price",
    }

    def add_rule_error(self, line: int | None, field: str, message: str) -> None:
        if line is not None:
            part = self.RULE_FIELDS.get(field)
            name = f"line{line}_{part}" if part else None
        else:
            name = self.RULE_FIELDS.get(field)
            if name is None and field.startswith("prescription.") and field.count(".") == 2:
                _prefix, eye, part = field.split(".")
                name = f"{eye}_{part}"
        self.add_error(name if name in self.fields else None, message)
