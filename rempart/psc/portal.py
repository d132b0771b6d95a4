"""The owner's page: which members may log in with Pro Santé Connect, by their RPPS.

Linking names who a PSC identity is in Rempart, so it is a step-up action, recorded on the member and
shown to them; detaching only takes a way in away, so it is not.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from rempart.accounts.models import Membership, Organisation, Role
from rempart.accounts.stepup import step_up_required
from rempart.psc import linking
from rempart.psc.config import is_enabled


class RppsForm(forms.Form):
    rpps = forms.CharField(label=gettext_lazy("Numéro RPPS"), max_length=14, min_length=11)


def _owned_organisation(request) -> Organisation:
    """The owner's professional organisation; anyone else gets 404, as for the other owner pages."""
    membership = request.user.membership
    if (
        membership is None
        or membership.role != Role.OWNER
        or membership.organisation.kind != Organisation.Kind.PROFESSIONAL
    ):
        raise Http404
    return membership.organisation


@login_required
def members(request):
    organisation = _owned_organisation(request)
    memberships = organisation.memberships.select_related("user", "user__psc_identity").order_by(
        "user__email"
    )
    return render(
        request,
        "psc/members.html",
        {
            "organisation": organisation,
            "memberships": memberships,
            "form": RppsForm(),
            "enabled": is_enabled(),
        },
    )


@login_required
@require_POST
@step_up_required
def link_member(request, pk: int):
    organisation = _owned_organisation(request)
    membership = get_object_or_404(Membership, pk=pk, organisation=organisation)
    form = RppsForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Numéro RPPS invalide (11 chiffres, clé de contrôle)."))
        return redirect("psc:members")
    try:
        identity = linking.link(membership.user, form.cleaned_data["rpps"], by=request.user, request=request)
    except linking.LinkRefused as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(
            request,
            _("%(email)s peut se connecter avec Pro Santé Connect (RPPS %(rpps)s).")
            % {"email": membership.user.email, "rpps": identity.rpps},
        )
    return redirect("psc:members")


@login_required
@require_POST
def unlink_member(request, pk: int):
    organisation = _owned_organisation(request)
    membership = get_object_or_404(Membership, pk=pk, organisation=organisation)
    if linking.unlink(membership.user, by=request.user, request=request):
        messages.success(
            request,
            _("%(email)s ne peut plus se connecter avec Pro Santé Connect.")
            % {"email": membership.user.email},
        )
    return redirect("psc:members")
