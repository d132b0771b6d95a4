from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _


def _size_checked(uploaded):
    limit = settings.REMPART_MAX_UPLOAD_MB * 1024 * 1024
    if uploaded.size > limit:
        raise forms.ValidationError(
            _(
                "Fichier trop volumineux pour le portail (%(mb)s Mo au plus) : utilisez la commande rempart import-rights."
            ),
            params={"mb": settings.REMPART_MAX_UPLOAD_MB},
        )
    return uploaded


class RightsUploadForm(forms.Form):
    file = forms.FileField(label=_("Fichier de droits (format rempart-rights v1)"))
    mode = forms.ChoiceField(
        label=_("Mode"),
        choices=[
            ("delta", _("Delta : ajouts et modifications")),
            ("full", _("Complet : met fin aux contrats absents")),
        ],
        initial="delta",
    )
    dry_run = forms.BooleanField(
        label=_("Simulation (ne rien modifier)"),
        required=False,
        help_text=_(
            "Dit ce que le fichier créerait, modifierait et clôturerait, même au-delà du seuil de sécurité."
        ),
    )
    force = forms.BooleanField(
        label=_("Forcer au-delà du seuil de sécurité (mode complet)"),
        required=False,
        help_text=_(
            "Un fichier complet qui clôturerait une part inhabituelle des contrats ouverts est refusé ; forcer "
            "demande une confirmation et une preuve récente de votre second facteur."
        ),
    )
    confirm_force = forms.BooleanField(
        label=_("Je confirme : les contrats absents du fichier seront clôturés, quel qu'en soit le nombre."),
        required=False,
    )

    def clean_file(self):
        return _size_checked(self.cleaned_data["file"])

    def clean(self):
        data = super().clean()
        if data.get("force"):
            if data.get("mode") != "full":
                self.add_error("force", _("Le forçage ne concerne que le mode complet."))
            elif data.get("dry_run"):
                self.add_error(
                    "force", _("Une simulation n'a pas besoin d'être forcée : décochez l'une des deux.")
                )
            elif not data.get("confirm_force"):
                self.add_error("confirm_force", _("Cochez la confirmation pour forcer le chargement."))
        return data


class ProductsUploadForm(forms.Form):
    file = forms.FileField(label=_("Fichier de produits (format rempart-products v1)"))
    dry_run = forms.BooleanField(label=_("Simulation (ne rien modifier)"), required=False)

    def clean_file(self):
        return _size_checked(self.cleaned_data["file"])
