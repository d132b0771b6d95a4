"""Console forms: an incident, a scope's criteria (emails, token prefixes, networks…), a measure or note."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from rempart.accounts.models import ApiToken, Organisation, User
from rempart.incidents.models import Incident
from rempart.incidents.scope import ScopeCriteria, ScopeError
from rempart.ledger.models import Disclosure

DATETIME_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


def _lines(text: str) -> list[str]:
    return [part.strip() for part in text.replace(",", "\n").splitlines() if part.strip()]


class IncidentForm(forms.Form):
    title = forms.CharField(label=_("Titre"), max_length=200)
    detected_at = forms.DateTimeField(
        label=_("Détecté le"),
        widget=DATETIME_INPUT,
        input_formats=["%Y-%m-%dT%H:%M", "%d/%m/%Y %H:%M"],
        help_text=_("Point de départ du délai de 72 heures (RGPD art. 33)"),
    )
    description = forms.CharField(
        label=_("Ce qui s'est passé"), widget=forms.Textarea(attrs={"rows": 4}), required=False
    )
    contact = forms.CharField(
        label=_("Contact pour les assureurs"), max_length=300, required=False,
        help_text=_("Nom, courriel et téléphone de la personne à joindre"),
    )  # fmt: skip

    def clean_detected_at(self):
        value = self.cleaned_data["detected_at"]
        if value > timezone.now() + dt.timedelta(minutes=5):
            raise forms.ValidationError(_("La date de détection ne peut pas être dans le futur."))
        return value


class ScopeForm(forms.Form):
    label = forms.CharField(label=_("Libellé"), max_length=200, required=False)
    accounts = forms.CharField(
        label=_("Comptes (adresses électroniques)"), required=False, widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Une par ligne"),
    )  # fmt: skip
    tokens = forms.CharField(
        label=_("Jetons d'API (préfixes)"), required=False, widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Les 8 caractères après rmp_"),
    )  # fmt: skip
    organisations = forms.ModelMultipleChoiceField(
        label=_("Organisations"), required=False,
        queryset=Organisation.objects.filter(kind=Organisation.Kind.PROFESSIONAL).order_by("name"),
        widget=forms.SelectMultiple(attrs={"size": 4}),
    )  # fmt: skip
    networks = forms.CharField(
        label=_("Adresses ou réseaux source"), required=False, widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Une adresse ou un réseau CIDR par ligne, ex. 198.51.100.0/24"),
    )  # fmt: skip
    channels = forms.MultipleChoiceField(
        label=_("Canaux"), required=False, widget=forms.CheckboxSelectMultiple,
        choices=[(Disclosure.Channel.PORTAL, _("Portail")), (Disclosure.Channel.API, _("API"))],
    )  # fmt: skip
    since = forms.DateTimeField(
        label=_("Depuis"),
        required=False,
        widget=DATETIME_INPUT,
        input_formats=["%Y-%m-%dT%H:%M", "%d/%m/%Y %H:%M"],
    )
    until = forms.DateTimeField(
        label=_("Jusqu'à"),
        required=False,
        widget=DATETIME_INPUT,
        input_formats=["%Y-%m-%dT%H:%M", "%d/%m/%Y %H:%M"],
    )

    def clean_accounts(self) -> list[int]:
        emails = _lines(self.cleaned_data["accounts"])
        found = dict(User.objects.filter(email__in=[e.lower() for e in emails]).values_list("email", "pk"))
        unknown = [email for email in emails if email.lower() not in found]
        if unknown:
            raise forms.ValidationError(_("Compte inconnu : %(emails)s") % {"emails": ", ".join(unknown[:5])})
        return sorted(found.values())

    def clean_tokens(self) -> list[int]:
        prefixes = [p.removeprefix("rmp_").split("_")[0] for p in _lines(self.cleaned_data["tokens"])]
        found = dict(ApiToken.objects.filter(prefix__in=prefixes).values_list("prefix", "pk"))
        unknown = [prefix for prefix in prefixes if prefix not in found]
        if unknown:
            raise forms.ValidationError(
                _("Jeton inconnu : %(prefixes)s") % {"prefixes": ", ".join(unknown[:5])}
            )
        return sorted(found.values())

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            data["criteria"] = ScopeCriteria(
                user_ids=tuple(data["accounts"]),
                token_ids=tuple(data["tokens"]),
                organisation_ids=tuple(o.pk for o in data["organisations"]),
                networks=tuple(_lines(data["networks"])),
                channels=tuple(data["channels"]),
                since=data.get("since"),
                until=data.get("until"),
            )
        except ScopeError as exc:
            raise forms.ValidationError(str(exc)) from None
        return data


class StatusForm(forms.Form):
    status = forms.ChoiceField(label=_("Nouveau statut"), choices=Incident.Status.choices)
    note = forms.CharField(label=_("Commentaire"), required=False, max_length=500)


class TextForm(forms.Form):
    text = forms.CharField(label=_("Texte"), widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)
