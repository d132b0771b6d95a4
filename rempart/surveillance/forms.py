"""Security console forms: switch something off (with a reason), plant canaries, filter the alert queue."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from rempart.accounts.models import ApiToken, Organisation, User
from rempart.registry.models import CareDomain, Insurer
from rempart.surveillance.models import Alert, Switch

DOMAIN_CHOICES = [("", _("Tous les domaines de soins"))] + [
    (value, f"{value} — {label}") for value, label in CareDomain.choices
]


def token_by_prefix(text: str) -> ApiToken | None:
    """A token from what the console shows (``rmp_1a2b3c4d_…``) or from its bare prefix."""
    text = text.strip().rstrip("…").rstrip(".").strip("_")
    if text.startswith("rmp_"):
        text = text[4:]
    prefix = text.split("_", 1)[0].lower()
    return ApiToken.objects.filter(prefix=prefix).select_related("organisation").first() if prefix else None


class SwitchOffForm(forms.Form):
    """One form for every kind of cut: the target decides which of the fields below is read."""

    target = forms.ChoiceField(label=_("Couper"), choices=Switch.Target.choices, widget=forms.RadioSelect)
    email = forms.EmailField(label=_("Compte (adresse électronique)"), required=False)
    token = forms.CharField(
        label=_("Jeton d'API (préfixe)"),
        max_length=40,
        required=False,
        help_text=_("par exemple rmp_1a2b3c4d"),
    )
    organisation = forms.ModelChoiceField(
        label=_("Organisation"),
        queryset=Organisation.objects.exclude(kind=Organisation.Kind.OPERATOR).order_by("name"),
        required=False,
    )
    amc_number = forms.CharField(
        label=_("Assureur (numéro AMC)"), max_length=9, required=False,
        help_text=_("toutes les vérifications présentant une carte de cet assureur"),
    )  # fmt: skip
    channel = forms.ChoiceField(label=_("Canal"), choices=Switch.Channel.choices, required=False)
    domain = forms.ChoiceField(label=_("Domaine de soins"), choices=DOMAIN_CHOICES, required=False)
    reason = forms.CharField(
        label=_("Motif"), max_length=300, widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Obligatoire : il est montré dans ce panneau et consigné dans le journal de sécurité."),
    )  # fmt: skip

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(_("Indiquez le motif de la coupure."))
        return reason

    def clean(self):
        data = super().clean()
        target = data.get("target")
        fields: dict = {}
        if target == Switch.Target.ACCOUNT:
            user = User.objects.filter(email__iexact=(data.get("email") or "").strip()).first()
            if user is None:
                self.add_error("email", _("Aucun compte avec cette adresse."))
            elif user.membership and user.membership.organisation.kind == Organisation.Kind.OPERATOR:
                self.add_error("email", _("Les comptes de l'opérateur ne se coupent pas ici."))
            fields["user"] = user
        elif target == Switch.Target.TOKEN:
            token = token_by_prefix(data.get("token") or "")
            if token is None:
                self.add_error("token", _("Aucun jeton avec ce préfixe."))
            fields["token"] = token
        elif target == Switch.Target.ORGANISATION:
            if data.get("organisation") is None:
                self.add_error("organisation", _("Choisissez l'organisation."))
            fields["organisation"] = data.get("organisation")
        elif target == Switch.Target.INSURER:
            insurer = Insurer.objects.filter(amc_number=(data.get("amc_number") or "").strip()).first()
            if insurer is None:
                self.add_error("amc_number", _("Aucun assureur avec ce numéro AMC."))
            fields["insurer"] = insurer
        elif target == Switch.Target.CHANNEL and not data.get("channel"):
            # Cutting every channel for everyone is not one click away: name the channel.
            self.add_error("channel", _("Choisissez le canal à couper."))
        data["fields"] = fields
        return data

    def switch_fields(self) -> dict:
        """Keyword arguments for switches.switch_off (besides target, reason and by)."""
        data = self.cleaned_data
        return {**data["fields"], "channel": data.get("channel") or "", "domain": data.get("domain") or ""}


class PlantForm(forms.Form):
    insurer = forms.ModelChoiceField(label=_("Assureur"), queryset=Insurer.objects.order_by("name"))
    count = forms.IntegerField(label=_("Nombre de canaris"), min_value=1, max_value=5, initial=2)


class AlertFilterForm(forms.Form):
    """The queue's filters; each one that is wrong is said so and left out, the others still apply."""

    status = forms.ChoiceField(
        label=_("Statut"), choices=[("", _("Tous"))] + list(Alert.Status.choices), required=False
    )
    severity = forms.ChoiceField(
        label=_("Gravité"), choices=[("", _("Toutes"))] + list(Alert.Severity.choices), required=False
    )
    actor = forms.CharField(
        label=_("Acteur"), max_length=120, required=False,
        help_text=_("adresse électronique d'un compte, préfixe d'un jeton (rmp_…) ou adresse IP"),
    )  # fmt: skip
    organisation = forms.ModelChoiceField(
        label=_("Organisation"),
        queryset=Organisation.objects.order_by("name"),
        required=False,
        empty_label=_("Toutes"),
    )
    signal = forms.ChoiceField(label=_("Signal"), required=False)
    since = forms.DateField(label=_("Du"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label=_("Au"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    assigned = forms.ChoiceField(
        label=_("Attribution"),
        required=False,
        choices=[("", _("Toutes")), ("me", _("À moi")), ("nobody", _("Personne"))],
    )

    def __init__(self, *args, **kwargs) -> None:
        from rempart.surveillance.responses import SIGNAL_LABELS

        super().__init__(*args, **kwargs)
        signals = sorted(((code, str(label)) for code, label in SIGNAL_LABELS.items()), key=lambda c: c[1])
        self.fields["signal"].choices = [("", _("Tous"))] + signals

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            self.add_error("until", _("La fin de la période précède son début."))
        return data

    def filter(self, alerts, user):
        """The alerts that pass every valid filter (call after ``is_valid``, whatever its answer)."""
        import datetime as dt

        from django.db.models import Q
        from django.utils import timezone

        data = getattr(self, "cleaned_data", {})
        for name in ("status", "severity", "signal"):
            if data.get(name):
                alerts = alerts.filter(**{name: data[name]})
        if data.get("organisation"):
            alerts = alerts.filter(organisation=data["organisation"])
        actor = (data.get("actor") or "").strip()
        if actor:
            alerts = alerts.filter(actor_filter(actor))
        zone = timezone.get_current_timezone()
        if data.get("since"):
            alerts = alerts.filter(created_at__gte=dt.datetime.combine(data["since"], dt.time.min, zone))
        if data.get("until"):
            end = dt.datetime.combine(data["until"] + dt.timedelta(days=1), dt.time.min, zone)
            alerts = alerts.filter(created_at__lt=end)
        if data.get("assigned") == "me":
            alerts = alerts.filter(assigned_to=user)
        elif data.get("assigned") == "nobody":
            alerts = alerts.filter(Q(assigned_to__isnull=True))
        return alerts


def actor_filter(text: str):
    """Alerts of an actor given as the console shows it: an email, a token (rmp_… or its prefix), an address."""
    import ipaddress

    from django.db.models import Q

    try:
        return Q(ip_address=str(ipaddress.ip_address(text)))
    except ValueError:
        pass
    if "@" in text:
        return Q(user__email__iexact=text)
    token = token_by_prefix(text)
    if token is not None:
        return Q(token=token)
    return Q(user__email__icontains=text) | Q(token__name__icontains=text)
