"""The shop's quote form: the patient's cards (as at the counter), the prescription, up to four quote lines."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from rempart.rights.forms import RightsCheckForm

LINES = 4
DATE_ATTRS = {
    "inputmode": "numeric",
    "autocomplete": "off",
    "data-mask": "date",
    "placeholder": _("JJ/MM/AAAA"),
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
        widget=forms.TextInput(attrs={"inputmode": "numeric"}),
    )
    medical_condition = forms.BooleanField(
        label=_("Pathologie attestée (renouvellement anticipé)"), required=False
    )

    def __init__(self, *args, domains: list[str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if domains:
            self.fields["domain"].choices = [c for c in self.fields["domain"].choices if c[0] in domains]
        for eye, label in (("right", _("Œil droit")), ("left", _("Œil gauche"))):
            for part, name in (
                ("sphere", _("sphère")),
                ("cylinder", _("cylindre")),
                ("addition", _("addition")),
            ):
                self.fields[f"{eye}_{part}"] = forms.CharField(
                    label=f"{label} — {name}", required=False, max_length=7,
                    widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "+0,00", "size": 6}),
                )  # fmt: skip
        for n in range(1, LINES + 1):
            self.fields[f"line{n}_code"] = forms.CharField(label=_("Code LPP"), required=False, max_length=13)
            self.fields[f"line{n}_class"] = forms.ChoiceField(
                label=_("Classe"), required=False,
                choices=[("", "—"), ("A", "A"), ("B", "B"), ("I", "I"), ("II", "II")],
            )  # fmt: skip
            self.fields[f"line{n}_side"] = forms.ChoiceField(
                label=_("Côté"), required=False,
                choices=[("", _("— (monture)")), ("right", _("droit")), ("left", _("gauche"))],
            )  # fmt: skip
            self.fields[f"line{n}_quantity"] = forms.IntegerField(
                label=_("Qté"), min_value=1, max_value=2, initial=1, required=False
            )
            self.fields[f"line{n}_price"] = forms.DecimalField(
                label=_("Prix unitaire (€)"), required=False, min_value=Decimal("0.01"), max_digits=9, decimal_places=2,
                localize=True,
            )  # fmt: skip

    def eyes(self):
        return [
            [self[f"{eye}_{part}"] for part in ("sphere", "cylinder", "addition")]
            for eye in ("right", "left")
        ]

    def lines(self):
        return [
            [self[f"line{n}_{part}"] for part in ("code", "class", "side", "quantity", "price")]
            for n in range(1, LINES + 1)
        ]

    def clean(self):
        data = super().clean()
        filled = [n for n in range(1, LINES + 1) if data.get(f"line{n}_code")]
        if not filled:
            raise forms.ValidationError(_("Saisissez au moins une ligne du devis."))
        for n in filled:
            if not data.get(f"line{n}_class"):
                self.add_error(f"line{n}_class", _("classe requise"))
            if data.get(f"line{n}_price") is None:
                self.add_error(f"line{n}_price", _("prix requis"))
        return data
