from django import forms
from django.contrib.auth.password_validation import password_validators_help_text_html
from django.utils.translation import gettext_lazy as _

from rempart.accounts.models import ROLES_BY_KIND, Organisation, Role
from rempart.accounts.scopes import SCOPES, scopes_for


class AcceptInvitationForm(forms.Form):
    full_name = forms.CharField(label=_("Nom complet"), max_length=150)
    password1 = forms.CharField(
        label=_("Mot de passe"),
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label=_("Confirmez le mot de passe"),
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self):
        data = super().clean()
        if data.get("password1") and data.get("password1") != data.get("password2"):
            self.add_error("password2", _("Les deux mots de passe diffèrent."))
        return data


LEAST_POWERFUL_ROLE = {
    Organisation.Kind.PROFESSIONAL: Role.STAFF,
    Organisation.Kind.INSURER: Role.INSURER_MEMBER,
    Organisation.Kind.OPERATOR: Role.SUPPORT,
}


class InviteForm(forms.Form):
    email = forms.EmailField(label=_("Adresse électronique"))
    role = forms.ChoiceField(label=_("Rôle"))

    def __init__(self, *args, organisation: Organisation, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = [(r.value, r.label) for r in ROLES_BY_KIND[organisation.kind]]
        # The least powerful role is preselected: granting more is a choice, never an oversight.
        self.fields["role"].initial = LEAST_POWERFUL_ROLE[organisation.kind]


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class TokenForm(forms.Form):
    name = forms.CharField(label=_("Nom du logiciel"), max_length=100)
    scopes = forms.MultipleChoiceField(
        label=_("Autorisations"), choices=list(SCOPES.items()), widget=forms.CheckboxSelectMultiple
    )
    lifetime_days = forms.IntegerField(label=_("Validité (jours)"), min_value=1, max_value=730, initial=365)

    def __init__(self, *args, kind: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if kind is not None:  # only the scopes this kind of organisation may hold
            self.fields["scopes"].choices = list(scopes_for(kind).items())


class NoEchoTextInput(forms.TextInput):
    """A text input that never writes the submitted value back into the page (IBAN: not in error pages)."""

    def format_value(self, value):
        return None


class BankDetailsForm(forms.Form):
    iban = forms.CharField(
        label=_("IBAN"), max_length=40, widget=NoEchoTextInput(attrs={"autocomplete": "off"})
    )
    bic = forms.CharField(label=_("BIC"), max_length=11)
