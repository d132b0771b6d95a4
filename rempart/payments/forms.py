"""The operator console's forms: prepare a run (cut-off, execution date), cancel one (with a reason).

Dates are typed the French way (JJ/MM/AAAA) or ISO, as elsewhere in Rempart; the service checks what the dates
mean (not in the future, not a week-end…) and its refusals land on the form.
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.utils.translation import gettext_lazy as _

DATE_FORMATS = ["%d/%m/%Y", "%Y-%m-%d"]
DATE_ATTRS = {"inputmode": "numeric", "autocomplete": "off", "placeholder": _("JJ/MM/AAAA")}


class PrepareRunForm(forms.Form):
    cutoff = forms.DateField(
        label=_("Date d'arrêté"),
        input_formats=DATE_FORMATS,
        widget=forms.DateInput(format="%d/%m/%Y", attrs=DATE_ATTRS),
        help_text=_(
            "Les montants dus à cette date (incluse) sont payés ; ceux d'après attendent la campagne suivante."
        ),
        error_messages={
            "required": _("Indiquez la date d'arrêté."),
            "invalid": _("Date attendue : JJ/MM/AAAA."),
        },
    )
    execution_date = forms.DateField(
        label=_("Date d'exécution demandée"),
        input_formats=DATE_FORMATS,
        widget=forms.DateInput(format="%d/%m/%Y", attrs=DATE_ATTRS),
        help_text=_("Le jour où la banque exécute les virements (un jour ouvré)."),
        error_messages={
            "required": _("Indiquez la date d'exécution."),
            "invalid": _("Date attendue : JJ/MM/AAAA."),
        },
    )

    def clean(self):
        data = super().clean()
        cutoff, execution = data.get("cutoff"), data.get("execution_date")
        if isinstance(cutoff, dt.date) and isinstance(execution, dt.date) and execution < cutoff:
            self.add_error("execution_date", _("La date d'exécution ne peut pas précéder la date d'arrêté."))
        return data


class CancelRunForm(forms.Form):
    reason = forms.CharField(
        label=_("Motif de l'annulation"),
        max_length=200,
        widget=forms.TextInput(attrs={"size": 60, "autocomplete": "off"}),
        error_messages={
            "required": _("Indiquez pourquoi vous annulez cette campagne."),
            "max_length": _("Le motif tient en 200 caractères au plus."),
        },
    )
