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
from rempart.authorizations.forms import LINES, PecForm
from rempart.authorizations.models import Pec
from rempart.authorizations.optics import Correction, CorrectionError
from rempart.authorizations.service import PEC_DOMAINS, PecConflict, cancel_pec, request_pec
from rempart.gate import Actor, RefusedDomain
from rempart.rights.cards import CardDataError, read_card_data
from rempart.rights.forms import french_to_iso
from rempart.rights.views import redirect_for_refusal, refused_domain_message
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


def _date(text: str, field: str) -> dt.date:
    try:
        return dt.date.fromisoformat(french_to_iso(text))
    except ValueError:
        raise rules.PecInputError(None, field, _("date au format JJ/MM/AAAA")) from None


def _request_from(data: dict) -> rules.PecRequest:
    corrections = {}
    for eye in ("right", "left"):
        values = [
            (data.get(f"{eye}_{part}") or "").replace(",", ".").strip()
            for part in ("sphere", "cylinder", "addition")
        ]
        if any(values):
            try:
                corrections[eye] = Correction.of(values[0] or "0", values[1] or "0", values[2] or "0")
            except CorrectionError as exc:
                raise rules.PecInputError(None, f"{eye}_{exc.field}", exc.message) from None
    lines = []
    for n in range(1, LINES + 1):
        if not data.get(f"line{n}_code"):
            continue
        cents = int((data[f"line{n}_price"] * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        lines.append(rules.QuoteLine(data[f"line{n}_code"].strip(), data[f"line{n}_class"], data[f"line{n}_side"] or None,
                                     data.get(f"line{n}_quantity") or 1, cents))  # fmt: skip
    prescription = rules.Prescription(
        date=_date(data["prescription_date"], "prescription_date"),
        prescriber_id=data["prescriber_id"].strip(),
        right=corrections.get("right"),
        left=corrections.get("left"),
        medical_condition=data.get("medical_condition", False),
    )
    return rules.PecRequest(
        data["domain"], _date(data["delivery_date"], "delivery_date"), prescription, tuple(lines)
    )


@login_required
def ask(request):
    organisation, domains = _pec_organisation(request)
    form = PecForm(request.POST or None, domains=domains, initial={"domain": domains[0]})
    outcome, errors, status = None, [], 200
    if request.method == "POST":
        if not form.is_valid():
            status = 400
        else:
            data = form.cleaned_data
            try:
                card = read_card_data(
                    amc_number=data["amc_number"], adherent_number=data["adherent_number"], nir=data["nir"],
                    birth_date=french_to_iso(data["birth_date"]), birth_rank=data["birth_rank"],
                    domain=data["domain"], today=timezone.localdate(), date_format=_("JJ/MM/AAAA"),
                )  # fmt: skip
                pec_request = _request_from(data)
                card = dataclasses.replace(card, care_date=pec_request.delivery_date)
                outcome = request_pec(Actor.portal(request), card, pec_request)
            except CardDataError as exc:
                form.add_error(exc.field, exc.message)
                status = 400
            except rules.PecInputError as exc:
                errors = [e.as_dict() for e in exc.errors]
                status = 400
            except PecConflict as exc:
                errors, status = [{"line": None, "field": "", "message": str(exc)}], 409
            except RefusedDomain as exc:
                form.add_error("domain", refused_domain_message(exc.domain))
                status = 403
            except CheckRefused as exc:
                if (response := redirect_for_refusal(request, exc)) is not None:
                    return response
                errors, status = [{"line": None, "field": "", "message": exc.message}], exc.status
            else:
                log_out_if_suspended(request)
    context = {"form": form, "outcome": outcome, "errors": errors, "organisation": organisation}
    return render(request, "authorizations/ask.html", context, status=status)


@login_required
def history(request):
    organisation, _domains = _pec_organisation(request)
    page = Paginator(Pec.objects.filter(organisation=organisation).order_by("-created_at"), 50).get_page(
        request.GET.get("page")
    )
    return render(request, "authorizations/history.html", {"page": page, "organisation": organisation})


@login_required
@require_POST
def cancel(request, number: str):
    organisation, _domains = _pec_organisation(request)
    pec = get_object_or_404(Pec, number=number, organisation=organisation)
    if cancel_pec(pec, organisation.pk):
        messages.success(request, _("Prise en charge %(n)s annulée.") % {"n": pec.number})
    else:
        messages.error(request, _("Cette prise en charge ne peut plus être annulée."))
    return redirect("authorizations:history")
