"""The counter pages: check a patient's rights, and the organisation's own history of checks (no identity)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from rempart.accounts import roles
from rempart.accounts.models import ApiToken, Organisation, User
from rempart.accounts.sessions import log_out_if_suspended
from rempart.accounts.stepup import step_up_redirect
from rempart.gate import Actor, RefusedDomain, check_rights
from rempart.ledger.models import Disclosure
from rempart.lib.db_routing import reads_may_lag
from rempart.rights import carry
from rempart.rights.cards import CardDataError, read_card_data
from rempart.rights.forms import HistorySearchForm, RightsCheckForm
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
    answer, status, refusal, pec_link = None, 200, None, False
    if request.method == "POST":
        data = carry.fill_blanks(request, request.POST, ("nir",), carry.STEP_UP)
        form = RightsCheckForm(data, initial={"domain": domains[0]}, domains=domains)
        answer, status, refusal, response = _answer(request, form)
        if response is not None:
            return response
        if answer is not None:
            carry.discard(request, carry.STEP_UP)
            pec_link = _hand_to_pec(request, organisation, answer, form.cleaned_data)
            # The check may have suspended this account (a canary, a threshold): its sessions were ended.
            # The answer is still shown as for anyone, on a fresh anonymous session.
            log_out_if_suspended(request)
            form = RightsCheckForm(initial={"domain": answer.domain}, domains=domains)  # for the next patient
        else:
            form.focus_first_error()
    else:
        form, _kept = counter_form_after_step_up(
            request, RightsCheckForm, initial={"domain": domains[0]}, domains=domains
        )
    context = {
        "form": form, "answer": answer, "refusal": refusal, "pec_link": pec_link,
        "summary": form.error_summary() if status >= 400 else [],
    }  # fmt: skip
    return render(request, "rights/check.html", context, status=status)


def _answer(request, form: RightsCheckForm):
    """(answer or None, HTTP status, refusal text or None, a redirect for a step-up or a suspension or None)."""
    if not form.is_valid():
        return None, 400, None, None
    data = form.cleaned_data
    try:
        card = read_card_data(
            amc_number=data["amc_number"], adherent_number=data["adherent_number"], nir=data["nir"],
            birth_date=data["birth_date"], birth_rank=data["birth_rank"], domain=data["domain"],
            care_date=data["care_date"], today=timezone.localdate(), date_format=_("JJ/MM/AAAA"),
        )  # fmt: skip
    except CardDataError as exc:
        form.add_error(exc.field, exc.message)
        return None, 400, None, None
    try:
        return check_rights(Actor.portal(request), card), 200, None, None
    except RefusedDomain as exc:
        form.add_error("domain", refused_domain_message(exc.domain))
        return None, 403, None, None
    except CheckRefused as exc:
        if (response := redirect_for_refusal(request, exc)) is not None:
            keep_for_step_up(request, exc, form)
            return None, 302, None, response
        return None, exc.status, exc.message, None


def keep_for_step_up(request, exc: CheckRefused, form) -> None:
    """Asked for the second factor again: what was typed waits in the session for the return (rights.carry)."""
    if exc.code == "step_up_required" and request.user.is_authenticated:
        carry.keep(request, carry.STEP_UP, request.path, form.data.dict())


def counter_form_after_step_up(request, form_class, *, initial: dict, **kwargs):
    """A counter form for a GET: filled again with what was typed before a step-up (the NIR kept, not shown).
    Returns (form, whether something was kept)."""
    kept = carry.peek(request, carry.STEP_UP)
    if kept is None:
        return form_class(initial=initial, **kwargs), False
    data = {k: v for k, v in kept[0].items() if k != "nir"}
    form = form_class(initial={**initial, **data}, **kwargs)
    form.draft_kept = True
    if kept[0].get("nir"):
        form.fields["nir"].widget.attrs["placeholder"] = _("conservé — laissez vide pour le réutiliser")
    return form, True


def _hand_to_pec(request, organisation: Organisation, answer, data: dict) -> bool:
    """*Covered — prise en charge requise* in a domain the shop asks PECs for: its cards wait in the session
    for the PEC form (never in the URL). Returns whether the answer links to that form."""
    from rempart.authorizations.service import PEC_DOMAINS

    terms = getattr(answer, "terms", None)
    if answer.outcome != "covered" or terms is None or not terms.pec_required:
        return False
    if answer.domain not in PEC_DOMAINS or answer.domain not in _domains(organisation):
        return False
    if not request.user.is_authenticated:  # suspended by this very check: nothing to carry
        return False
    born = data["birth_date"]  # AAAA-MM-JJ, 00 for an unknown part
    cards = {
        "amc_number": data["amc_number"], "adherent_number": data["adherent_number"], "nir": data["nir"],
        "birth_date": f"{born[8:10]}/{born[5:7]}/{born[0:4]}", "birth_rank": str(data["birth_rank"] or 1),
        "domain": answer.domain,
    }  # fmt: skip
    carry.keep(request, carry.CARDS, reverse("authorizations:ask"), cards, reference=answer.reference)
    return True


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
@reads_may_lag
def history(request):
    organisation = _professional_organisation(request)
    search = HistorySearchForm(request.GET)
    rows = search.apply(
        Disclosure.objects.filter(organisation_id=organisation.pk), on="created_at", references=("reference",)
    )
    page = Paginator(rows.order_by("-created_at"), 50).get_page(request.GET.get("page"))
    users = dict(
        User.objects.filter(pk__in={r.user_id for r in page if r.user_id}).values_list("pk", "email")
    )
    token_names = dict(
        ApiToken.objects.filter(
            pk__in={r.token_id for r in page if r.token_id}, organisation=organisation
        ).values_list("pk", "name")
    )
    entries = [(row, users.get(row.user_id) or token_names.get(row.token_id, "—")) for row in page]
    context = {
        "page": page, "entries": entries, "organisation": organisation, "search": search,
        "search_query": search_query(request),
    }  # fmt: skip
    return render(request, "rights/history.html", context)


def search_query(request) -> str:
    """The search's query string, for the pages' links (``page`` aside): references and dates only."""
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()
