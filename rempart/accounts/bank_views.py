"""Bank details pages: the owner asks for a new IBAN (fresh second factor), sees it on hold and may cancel it;
operator staff list every change on hold and may cancel any. The rules are in rempart.registry.bank_hold."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from rempart.accounts import roles
from rempart.accounts.forms import BankDetailsForm
from rempart.accounts.stepup import step_up_required
from rempart.lib.identifiers import InvalidIdentifier
from rempart.registry import bank_hold
from rempart.registry.bank_hold import BankChangeRefused
from rempart.registry.models import BankDetailsChange, Professional

HISTORY = 10
OPERATOR_HISTORY = 50


def _own_professional(request) -> Professional:
    """The professional whose bank details this person manages: owners of a professional organisation only."""
    organisation = roles.organisation_of(request.user)
    professional = organisation.professional if organisation is not None else None
    if professional is None or not bank_hold.may_request(request.user, professional):
        raise Http404
    return professional


def _page(request, professional: Professional, form: BankDetailsForm, *, status: int = 200):
    bank_hold.release_due(professional=professional)  # the page says what is paid now
    professional.refresh_from_db()
    changes = professional.bank_changes.select_related("requested_by", "cancelled_by")
    context = {
        "form": form,
        "professional": professional,
        "masked_iban": professional.masked_iban(),
        "pending": bank_hold.pending_change(professional),
        "history": changes.exclude(status=BankDetailsChange.Status.PENDING)[:HISTORY],
        "hold_days": bank_hold.hold_period().days,
    }
    return render(request, "accounts/bank_details.html", context, status=status)


@login_required
def bank_details(request):
    return _page(request, _own_professional(request), BankDetailsForm())


@login_required
@require_POST
def bank_details_change(request):
    professional = _own_professional(request)  # before the step-up: nobody else is sent to the prompt
    return step_up_required(_change)(request, professional)


def _change(request, professional: Professional):
    form = BankDetailsForm(request.POST)
    if form.is_valid():
        try:
            change = bank_hold.request_change(
                professional, form.cleaned_data["iban"], form.cleaned_data["bic"], by=request.user,
                request=request,
            )  # fmt: skip
        except InvalidIdentifier as exc:
            _identifier_error(form, str(exc))
        except BankChangeRefused as exc:
            form.add_error(None, str(exc))
        except OSError:  # the notices could not be sent: nothing was recorded
            form.add_error(
                None,
                _("Les avertissements n'ont pas pu être envoyés : rien n'a été changé. Réessayez plus tard."),
            )
            return _page(request, professional, form, status=503)
        else:
            messages.success(
                request,
                _(
                    "Nouveau compte %(iban)s enregistré, en attente jusqu'au %(date)s : vous restez payé sur "
                    "l'ancien compte d'ici là. Les titulaires et l'opérateur ont été avertis."
                )
                % {"iban": change.iban_masked, "date": _date(change.hold_until)},
            )
            return redirect("accounts:bank_details")
    return _page(request, professional, form, status=400)


def _identifier_error(form: BankDetailsForm, reason: str) -> None:
    """The validators' reasons (rempart.lib.identifiers, in English) in the person's language, on the field."""
    if reason.startswith("IBAN"):
        form.add_error(
            "iban", _("IBAN invalide : vérifiez sa longueur et sa clé (les deux chiffres après le pays).")
        )
    elif "country" in reason:
        form.add_error("bic", _("Ce BIC n'est pas du même pays que l'IBAN."))
    else:
        form.add_error("bic", _("BIC invalide : 8 ou 11 caractères, par exemple BNPAFRPP."))


def _date(moment) -> str:
    return formats.date_format(timezone.localtime(moment), "SHORT_DATETIME_FORMAT")


def _cancel(request, change: BankDetailsChange, redirect_to: str):
    try:
        bank_hold.cancel_change(change, by=request.user, request=request)
    except BankChangeRefused as exc:
        messages.error(request, str(exc))
        bank_hold.release_due(professional=change.professional)
    else:
        messages.success(
            request,
            _(
                "Changement vers %(iban)s annulé : il ne sera jamais payé. Les titulaires et l'opérateur sont avertis."
            )
            % {"iban": change.iban_masked},
        )
    return redirect(redirect_to)


@login_required
@require_POST
def bank_change_cancel(request, pk: int):
    """An owner cancels a change of their own organisation (no step-up: cancelling only protects)."""
    professional = _own_professional(request)
    change = get_object_or_404(BankDetailsChange, pk=pk, professional=professional)
    return _cancel(request, change, "accounts:bank_details")


# --- operator console ----------------------------------------------------------------------------------


def _require_operator_staff(request) -> None:
    if not roles.is_operator(request.user, bank_hold.CANCELLER_ROLES):
        raise Http404


@login_required
def operator_bank_changes(request):
    """Every change on hold, the soonest applied first, and the latest ones decided."""
    _require_operator_staff(request)
    bank_hold.release_due()
    decided = (
        BankDetailsChange.objects.exclude(status=BankDetailsChange.Status.PENDING)
        .select_related("professional", "requested_by", "cancelled_by")
        .order_by("-requested_at", "-pk")[:OPERATOR_HISTORY]
    )
    return render(
        request,
        "accounts/bank_operator_changes.html",
        {"pending": list(bank_hold.pending_changes()), "decided": decided},
    )


@login_required
@require_POST
def operator_bank_change_cancel(request, pk: int):
    _require_operator_staff(request)
    change = get_object_or_404(BankDetailsChange.objects.select_related("professional"), pk=pk)
    return _cancel(request, change, "accounts:operator_bank_changes")
