from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _


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
    dry_run = forms.BooleanField(label=_("Simulation (ne rien modifier)"), required=False)

    def clean_file(self):
        uploaded = self.cleaned_data["file"]
        limit = settings.REMPART_MAX_UPLOAD_MB * 1024 * 1024
        if uploaded.size > limit:
            raise forms.ValidationError(
                _(
                    "Fichier trop volumineux pour le portail (%(mb)s Mo au plus) : utilisez la commande rempart import-rights."
                ),
                params={"mb": settings.REMPART_MAX_UPLOAD_MB},
            )
        return uploaded
