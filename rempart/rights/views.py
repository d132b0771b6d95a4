"""The counter pages: check a patient's rights, and the organisation's own history of checks (no identity)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from rempart.accounts import roles
from rempart.accounts.models import ApiToken, Organisation, User
from rempart.accounts.sessions import log_out_if_suspended
from rempart.accounts.stepup import step_up_redirect
from rempart.gate import Actor, RefusedDomain, check_rights
from rempart.ledger.models import Disclosure
from rempart.rights.cards import CardDataError, read_card_data
from rempart.rights.forms import RightsCheckForm, french_to_iso
from rempart.surveillance.engine import CheckRefused


def _professional_organisation(request) -> Organisation:
    organisation = roles.organisation_of(request.user)
    if organisation is None or organisation.kind != Organisation.Kind.PROFESSIONAL:
        raise Http404
    return organisation


@login_required
def check(request):
    organisation = _professional_organisation(request)
    domains = _domains(organisation)
    form = RightsCheckForm(request.POST or None, initial={"domain": domains[0]}, domains=domains)
    answer, status, refusal = None, 200, None
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                card = read_card_data(
                    amc_number=data["amc_number"],
                    adherent_number=data["adherent_number"],
                    nir=data["nir"],
                    birth_date=french_to_iso(data["birth_date"]),
                    birth_rank=data["birth_rank"],
                    domain=data["domain"],
                    care_date=french_to_iso(data["care_date"]),
                    today=timezone.localdate(),
                    date_format=_("JJ/MM/AAAA"),
                )
            except CardDataError as exc:
                form.add_error(exc.field, exc.message)
                status = 400
            else:
                try:
                    answer = check_rights(Actor.portal(request), card)
                except RefusedDomain as exc:
                    form.add_error("domain", refused_domain_message(exc.domain))
                    status = 403
                except CheckRefused as exc:
                    if (response := redirect_for_refusal(request, exc)) is not None:
                        return response
                    refusal, status = exc.message, exc.status
                else:
                    # The check may have suspended this account (a canary, a threshold): its sessions were ended.
                    # The answer is still shown as for anyone, on a fresh anonymous session.
                    log_out_if_suspended(request)
                    form = RightsCheckForm(
                        initial={"domain": card.domain}, domains=domains
                    )  # blank for the next patient
        else:
            status = 400
    context = {"form": form, "answer": answer, "refusal": refusal}
    return render(request, "rights/check.html", context, status=status)


def redirect_for_refusal(request, exc: CheckRefused):
    """A portal refusal that takes the person elsewhere: suspended meanwhile (log in again), or asked for the
    second factor again (step-up). None: show the refusal on the page."""
    if log_out_if_suspended(request):
        return redirect("account_login")
    if exc.code == "step_up_required":
        messages.warning(request, exc.message)
        return step_up_redirect(request)
    return None


def _domains(organisation: Organisation) -> list[str]:
    """The shop's care domains (the only ones the gate answers for it)."""
    domains = organisation.professional.domains if organisation.professional else []
    return list(domains) or ["PHAR"]


def refused_domain_message(domain: str) -> str:
    return _(
        "Votre organisation n'est pas enregistrée pour le domaine %(domain)s : "
        "la vérification n'a pas été faite (demande enregistrée)."
    ) % {"domain": domain}


@login_required
def history(request):
    organisation = _professional_organisation(request)
    rows = Disclosure.objects.filter(organisation_id=organisation.pk).order_by("-created_at")
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    users = dict(
        User.objects.filter(pk__in={r.user_id for r in page if r.user_id}).values_list("pk", "email")
    )
    token_names = dict(
        ApiToken.objects.filter(
            pk__in={r.token_id for r in page if r.token_id}, organisation=organisation
        ).values_list("pk", "name")
    )
    entries = [(row, users.get(row.user_id) or token_names.get(row.token_id, "—")) for row in page]
    return render(
        request, "rights/history.html", {"page": page, "entries": entries, "organisation": organisation}
    )
