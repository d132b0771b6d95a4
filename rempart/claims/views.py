"""The claims pages: the shop's invoices (*Factures*, a claim's detail, invoicing a PEC, a plain invoice) and
the operator's review queue.

Thin: :func:`submit_claim` and :func:`review_claim` decide. Nothing of the person is shown, ever: a claim is its
invoice number, dates, domain, amounts and reasons; the card data typed are not written back into the page
(but the adherent number), and a miss is the same *no match* as at the rights check.
"""

from __future__ import annotations

import functools

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from rempart import gate
from rempart.accounts import roles
from rempart.accounts.models import Organisation, Role
from rempart.accounts.sessions import log_out_if_suspended
from rempart.accounts.stepup import step_up_required
from rempart.authorizations.models import Pec
from rempart.claims import drafts, portal, rules
from rempart.claims.forms import CARD_FIELDS, ClaimFilterForm, InvoiceForm, ReviewForm
from rempart.claims.models import Claim
from rempart.claims.reasons import label
from rempart.claims.service import ClaimConflict, review_claim, submit_claim
from rempart.rights.cards import CardDataError, read_card_data
from rempart.rights.views import redirect_for_refusal, refused_domain_message
from rempart.surveillance.engine import CheckRefused

PAGE_SIZE = 50
# The review moves money but discloses nothing: support and admin (not the security analysts, whose console is
# surveillance and incidents). docs/security.md §1.2.
REVIEWER_ROLES = {Role.SUPPORT, Role.ADMIN}


def _professional(request) -> Organisation:
    organisation = roles.organisation_of(request.user)
    if (
        organisation is None
        or organisation.kind != Organisation.Kind.PROFESSIONAL
        or not organisation.professional
    ):
        raise Http404
    return organisation


# ---------------------------------------------------------------------------------------------- Factures


@login_required
def claims_list(request):
    organisation = _professional(request)
    filters = ClaimFilterForm(request.GET)
    claims = Claim.objects.filter(organisation=organisation).select_related("lot")
    if filters.is_valid():
        wanted = filters.cleaned_data
        if wanted["status"]:
            claims = claims.filter(status=wanted["status"])
        on = "created_at__date" if wanted["date_field"] == "received" else "care_date"
        if wanted["since"]:
            claims = claims.filter(**{f"{on}__gte": wanted["since"]})
        if wanted["until"]:
            claims = claims.filter(**{f"{on}__lte": wanted["until"]})
        if wanted["q"].strip():
            claims = claims.filter(invoice_number__icontains=wanted["q"].strip())
    page = Paginator(claims.order_by("-created_at", "-pk"), PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "page": page,
        "filters": filters,
        "filter_query": query.urlencode(),
        "organisation": organisation,
    }
    return render(request, "claims/list.html", context)


@login_required
def claim_detail(request, invoice_number: str):
    organisation = _professional(request)
    claim = get_object_or_404(
        Claim.objects.select_related("lot"), organisation=organisation, invoice_number=invoice_number
    )
    return render(request, "claims/detail.html", {"claim": claim, "rows": _lines(claim)})


def _lines(claim: Claim) -> list[tuple]:
    """Each stored line with the rules' explanation of it (French: the rules' own words)."""
    explanations = {d.get("number"): d.get("explanation", "") for d in claim.decision.get("lines", [])}
    proposed = {d.get("number"): d.get("accepted_cents") for d in claim.decision.get("lines", [])}
    return [
        (line, explanations.get(line.number, ""), proposed.get(line.number))
        for line in claim.lines.order_by("number")
    ]


# ---------------------------------------------------------------------------------------------- invoicing


@login_required
def invoice_pec(request, number: str):
    """*Facturer cette prise en charge*: the PEC's lines, number and domain come from the PEC itself."""
    organisation = _professional(request)
    pec = get_object_or_404(Pec, number=number, organisation=organisation)
    today = timezone.localdate()
    # A POST always goes to the rules: a second send of the same invoice replays its answer.
    if request.method != "POST" and not portal.invoiceable(pec, today):
        messages.error(
            request,
            _(
                "La prise en charge %(n)s ne peut plus être facturée (refusée, annulée, expirée ou déjà facturée)."
            )
            % {"n": pec.number},
        )
        return redirect("authorizations:history")
    lines = portal.pec_invoice_lines(pec)
    initial = {
        "invoice_date": today,
        "care_date": min(pec.delivery_date, today),
        "prescriber_rpps": portal.pec_prescriber(pec),
    }
    for n, line in enumerate(lines, start=1):
        initial[f"line{n}_amo_paid"] = line["amo_cents"]
        initial[f"line{n}_amc_claimed"] = line["amc_cents"]
    context = {"pec": pec}
    return _invoice_page(
        request, organisation, "claims/invoice_pec.html", context, initial, pec_lines=lines, pec=pec
    )


@login_required
def invoice_new(request):
    """A plain invoice, for the organisation's domains paid without a PEC."""
    organisation = _professional(request)
    from rempart.authorizations.service import PEC_DOMAINS

    domains = [d for d in organisation.professional.domains or () if d not in PEC_DOMAINS]
    if not domains:
        return render(request, "claims/invoice_new.html", {"no_domain": True})
    today = timezone.localdate()
    initial = {"invoice_date": today, "care_date": today, "domain": domains[0]}
    return _invoice_page(request, organisation, "claims/invoice_new.html", {}, initial, domains=domains)


def _invoice_page(
    request, organisation, template, context, initial, *, domains=None, pec_lines=None, pec=None
):
    def blank_form(start):
        return InvoiceForm(initial=start, domains=domains, pec_lines=pec_lines)

    outcome, status = None, 200
    if request.method == "POST":
        data = drafts.fill_blanks(request, request.POST, CARD_FIELDS)
        form = InvoiceForm(data, domains=domains, pec_lines=pec_lines)
        outcome, status, response = _receive(request, form, organisation, pec)
        if response is not None:
            return response
        if outcome is not None:
            drafts.discard(request)
            log_out_if_suspended(request)
            form = blank_form(initial)  # for the next patient (the PEC page shows no form after an answer)
        else:
            form.focus_first_error()
    else:
        draft = drafts.peek(request)
        form = blank_form({**initial, **(draft or {})})
        context = {**context, "draft_kept": draft is not None}
    context = {
        **context, "form": form, "outcome": outcome, "summary": portal.error_summary(form) if status >= 400 else [],
        "organisation": organisation,
    }  # fmt: skip
    return render(request, template, context, status=status)


def _receive(request, form: InvoiceForm, organisation, pec: Pec | None):
    """Check the form and the invoice's rules (every error at once, no ledger row), then submit it.
    Returns (outcome or None, HTTP status, a redirect for a step-up or a suspension, or None)."""
    today = timezone.localdate()
    form.is_valid()
    data = form.cleaned_data
    domain = pec.domain if pec is not None else data.get("domain")
    card = None
    if domain and not any(form.has_error(name) for name in CARD_FIELDS):
        try:
            card = read_card_data(
                amc_number=data["amc_number"], adherent_number=data["adherent_number"], nir=data["nir"],
                birth_date=data["birth_date"], birth_rank=data["birth_rank"], domain=domain, today=today,
                date_format=_("JJ/MM/AAAA"),
            )  # fmt: skip
        except CardDataError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
    actor = gate.Actor.portal(request)
    try:
        if card is not None:  # the API's order: a domain the organisation does not practise is refused first
            gate.refuse_foreign_domain(actor, gate.PURPOSE_CLAIM, card.domain)
        invoice, rows = portal.build_invoice(form, domain=domain or "", pec=pec)
        try:
            rules.check_invoice(invoice, today=today, rules=rules.default_rules())
        except rules.ClaimInputError as exc:
            portal.add_rule_errors(form, exc, rows)
        if not form.is_valid() or card is None:
            return None, 400, None
        return submit_claim(actor, card, invoice, channel=Claim.Channel.PORTAL, today=today), 200, None
    except gate.RefusedDomain as exc:
        form.add_error("domain" if "domain" in form.fields else None, refused_domain_message(exc.domain))
        return None, 403, None
    except ClaimConflict:
        form.add_error(
            "invoice_number",
            _(
                "Ce numéro de facture a déjà servi pour une autre facture : chaque facture a son propre numéro."
            ),
        )
        return None, 409, None
    except CheckRefused as exc:
        if (response := redirect_for_refusal(request, exc)) is not None:
            if exc.code == "step_up_required" and request.user.is_authenticated:
                drafts.keep(
                    request, form.data.dict()
                )  # back from the second-factor prompt, nothing typed twice
            return None, 302, response
        form.add_error(None, exc.message)
        return None, exc.status, None


# ---------------------------------------------------------------------------------------------- review


def reviewer_required(view):
    """Operator support or admin; anyone else gets a plain 404 (and is never sent to a second-factor prompt)."""

    @login_required
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not roles.is_operator(request.user, REVIEWER_ROLES):
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


@reviewer_required
def review_queue(request):
    pending = Claim.objects.filter(status=Claim.Status.PENDING_REVIEW).select_related(
        "organisation__professional", "insurer"
    )
    page = Paginator(pending.order_by("created_at", "pk"), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "claims/review_queue.html", {"page": page})


@reviewer_required
@step_up_required  # the page that applies a decision is reached with a fresh second factor
def review_decide(request, pk: int):
    claim = get_object_or_404(
        Claim.objects.select_related("organisation__professional", "insurer", "lot"), pk=pk
    )
    language = get_language() or "fr"
    proposed = int(claim.decision.get("accepted_cents", claim.accepted_cents))
    form = ReviewForm(
        request.POST or None, proposed_cents=proposed, label_of=lambda code: label(code, language),
        initial={"decision": "accept", "reason": next(iter(claim.decision.get("review_reasons") or []), "")},
    )  # fmt: skip
    pending = claim.status == Claim.Status.PENDING_REVIEW
    if request.method == "POST":
        if not pending:
            messages.warning(
                request,
                _("Cette facture a déjà été jugée : la décision n'a pas été appliquée une seconde fois."),
            )
            return redirect("claims:review", pk=claim.pk)
        if form.is_valid():
            decision = form.cleaned_data
            try:
                review_claim(
                    claim, reviewer=request.user, decision=decision["decision"],
                    accepted_cents=decision["amount"] if decision["decision"] == "reduce" else None,
                    reason=decision["reason"], note=decision["note"].strip(), request=request,
                )  # fmt: skip
            except ValueError as exc:
                claim.refresh_from_db()
                if claim.status != Claim.Status.PENDING_REVIEW:  # decided meanwhile (a double submit)
                    messages.warning(
                        request,
                        _(
                            "Cette facture a déjà été jugée : la décision n'a pas été appliquée une seconde fois."
                        ),
                    )
                    return redirect("claims:review", pk=claim.pk)
                form.add_error(None, str(exc))
            else:
                claim.refresh_from_db()
                messages.success(
                    request,
                    _("Facture %(n)s jugée : %(status)s.")
                    % {"n": claim.invoice_number, "status": claim.get_status_display()},
                )
                return redirect("claims:review_queue")
    context = {"claim": claim, "rows": _lines(claim), "form": form, "pending": pending, "proposed": proposed}
    return render(request, "claims/review.html", context, status=400 if form.errors else 200)
