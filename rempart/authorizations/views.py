"""The shop's pages: ask for a prise en charge from a quote, and the organisation's own PECs (no identity)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from rempart.accounts import roles
from rempart.accounts.models import Organisation
from rempart.accounts.sessions import log_out_if_suspended
from rempart.authorizations import rules
from rempart.authorizations.catalogue import default_catalogue
from rempart.authorizations.forms import LINES, PecForm
from rempart.authorizations.models import Pec
from rempart.authorizations.service import PEC_DOMAINS, PecConflict, blocking_pecs, cancel_pec, request_pec
from rempart.gate import Actor, RefusedDomain
from rempart.rights import carry
from rempart.rights.cards import CardDataError, read_card_data
from rempart.rights.forms import HistorySearchForm
from rempart.rights.views import (
    counter_form_after_step_up,
    keep_for_step_up,
    redirect_for_refusal,
    refused_domain_message,
    search_query,
)
from rempart.surveillance.engine import CheckRefused


def _pec_organisation(request) -> tuple[Organisation, list[str]]:
    organisation = roles.organisation_of(request.user)
    if (
        organisation is None
        or organisation.kind != Organisation.Kind.PROFESSIONAL
        or not organisation.professional
    ):
        raise Http404
    domains = [d for d in organisation.professional.domains if d in PEC_DOMAINS]
    if not domains:
        raise Http404
    return organisation, domains


def _request_from(data: dict) -> rules.PecRequest:
    """The cleaned form (dates AAAA-MM-JJ, the prescription read by rempart.authorizations.spectacles)."""
    lines = []
    for n in range(1, LINES + 1):
        if not data.get(f"line{n}_code"):
            continue
        cents = int((data[f"line{n}_price"] * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        lines.append(rules.QuoteLine(data[f"line{n}_code"].strip(), data[f"line{n}_class"], data[f"line{n}_side"] or None,
                                     data.get(f"line{n}_quantity") or 1, cents))  # fmt: skip
    prescription = rules.Prescription(
        date=dt.date.fromisoformat(data["prescription_date"]),
        prescriber_id=data["prescriber_id"].strip(),
        right=data.get("right"),
        left=data.get("left"),
        medical_condition=data.get("medical_condition", False),
    )
    return rules.PecRequest(
        data["domain"], dt.date.fromisoformat(data["delivery_date"]), prescription, tuple(lines)
    )


@login_required
def ask(request):
    organisation, domains = _pec_organisation(request)
    initial = {"domain": domains[0]}
    outcome, status, blocking = None, 200, []
    if request.method == "POST":
        data = carry.fill_blanks(request, request.POST, ("nir",), carry.STEP_UP, REVISED, carry.CARDS)
        form = PecForm(data, domains=domains, initial=initial)
        outcome, status, response = _decide(request, form)
        if response is not None:
            return response
        if outcome is not None:
            carry.discard(request, carry.STEP_UP, REVISED, carry.CARDS)
            if outcome.pec is not None and (blocking := blocking_pecs(outcome.pec)):
                # A revised quote met the shop's own open PEC: kept, to come back filled once that one is cancelled.
                carry.keep(request, REVISED, request.path, form.data.dict())
            log_out_if_suspended(request)
            form = PecForm(domains=domains, initial={"domain": form.cleaned_data.get("domain") or domains[0]})
        else:
            form.focus_first_error()
    else:
        form = _form_for_a_get(request, initial, domains)
    context = {
        "form": form, "outcome": outcome, "organisation": organisation, "blocking": blocking,
        "summary": form.error_summary() if status >= 400 else [],
    }  # fmt: skip
    return render(request, "authorizations/ask.html", context, status=status)


REVISED = "counter.revised_quote"  # a quote refused because of the shop's own open PEC (rempart.rights.carry)


def _form_for_a_get(request, initial: dict, domains: list[str]) -> PecForm:
    """Blank, or filled again with what waits in the session: the form left for a step-up, the refused quote
    of a revision (after its blocking PEC was cancelled), or the cards of a rights check. The NIR is never
    written into the page: it is used when the field is left empty."""
    form, kept = counter_form_after_step_up(request, PecForm, initial=initial, domains=domains)
    if kept:
        return form
    for slot in (REVISED, carry.CARDS):
        if (found := carry.peek(request, slot)) is not None:
            data, extra = found
            form = PecForm(
                initial={**initial, **{k: v for k, v in data.items() if k != "nir"}}, domains=domains
            )
            form.carried = "revision" if slot == REVISED else "cards"
            form.carried_reference = extra.get("reference", "")
            if data.get("nir"):
                form.fields["nir"].widget.attrs["placeholder"] = _("repris — laissez vide pour le réutiliser")
            return form
    return form


def _decide(request, form: PecForm):
    """Every error of the form and of the quote at once (nothing looked up), then the PEC.
    Returns (outcome or None, HTTP status, a redirect for a step-up or a suspension, or None)."""
    today = timezone.localdate()
    form.is_valid()
    pec_request = None
    if form.quote_ready():
        pec_request = _request_from(form.cleaned_data)
        try:  # the quote's own checks, as request_pec runs them before the lookup: all shown with the cards'
            rules.check_request(pec_request, None, default_catalogue(), rules.default_rules(), today)
        except rules.PecInputError as exc:
            for error in exc.errors:
                form.add_rule_error(error.line, error.field, error.message)
    if form.errors or pec_request is None:
        return None, 400, None
    data = form.cleaned_data
    try:
        card = read_card_data(
            amc_number=data["amc_number"], adherent_number=data["adherent_number"], nir=data["nir"],
            birth_date=data["birth_date"], birth_rank=data["birth_rank"],
            domain=data["domain"], today=today, date_format=_("JJ/MM/AAAA"),
        )  # fmt: skip
        card = dataclasses.replace(card, care_date=pec_request.delivery_date)
        return request_pec(Actor.portal(request), card, pec_request), 200, None
    except CardDataError as exc:
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        return None, 400, None
    except rules.PecInputError as exc:  # what only the beneficiary's facts reveal (an age band): recorded
        for error in exc.errors:
            form.add_rule_error(error.line, error.field, error.message)
        return None, 400, None
    except PecConflict as exc:
        form.add_error(None, str(exc))
        return None, 409, None
    except RefusedDomain as exc:
        form.add_error("domain", refused_domain_message(exc.domain))
        return None, 403, None
    except CheckRefused as exc:
        if (response := redirect_for_refusal(request, exc)) is not None:
            keep_for_step_up(request, exc, form)
            return None, 302, response
        form.add_error(None, exc.message)
        return None, exc.status, None


@login_required
def history(request):
    organisation, _domains = _pec_organisation(request)
    search = HistorySearchForm(request.GET)
    pecs = search.apply(
        Pec.objects.filter(organisation=organisation),
        on="created_at",
        references=("number", "ledger_reference"),
    )
    page = Paginator(pecs.order_by("-created_at"), 50).get_page(request.GET.get("page"))
    context = {
        "page": page, "organisation": organisation, "search": search, "search_query": search_query(request),
        "today": timezone.localdate(),
    }  # fmt: skip
    return render(request, "authorizations/history.html", context)


@login_required
@require_POST
def cancel(request, number: str):
    organisation, _domains = _pec_organisation(request)
    pec = get_object_or_404(Pec, number=number, organisation=organisation)
    then = "authorizations:ask" if request.POST.get("then") == "ask" else "authorizations:history"
    if (
        request.POST.get("confirm") != "yes"
    ):  # cannot be undone: the box is ticked, with or without JavaScript
        messages.error(
            request,
            _("Cochez la case de confirmation pour annuler %(n)s : l'annulation est définitive.")
            % {"n": pec.number},
        )
        return redirect(then)
    if cancel_pec(pec, organisation.pk):
        messages.success(request, _("Prise en charge %(n)s annulée.") % {"n": pec.number})
    else:
        messages.error(request, _("Cette prise en charge ne peut plus être annulée."))
    if request.POST.get("then") == "ask":  # from a refused revised quote: back to it, kept (REVISED)
        return redirect("authorizations:ask")
    return redirect("authorizations:history")
