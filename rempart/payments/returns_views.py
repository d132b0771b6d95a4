"""The treasury console's bank returns: upload a pain.002 or a camt.054, read what it did or why it was refused.

For the operator's treasury and admins only (anyone else: 404), with a fresh second factor, because a
rejection moves money (the payable is credited again). A refused file changes nothing; its refusal is a
security event (someone uploading XML bombs is worth knowing about). No IBAN is ever shown, only masks.
"""

from __future__ import annotations

import functools
import hashlib

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from rempart.accounts import roles
from rempart.accounts.events import record_event
from rempart.accounts.models import Role
from rempart.accounts.stepup import step_up_required
from rempart.payments import bank_xml, return_reasons
from rempart.payments.models import BankFileImport, Payment
from rempart.payments.returns import BankFileRefused, import_bank_file

RETURNS_ROLES = {Role.TREASURY, Role.ADMIN}
RECENT = 30
SHOWN = (
    500  # returned transfers listed on a file's page (a group rejection of a big run lists the first ones)
)


class BankFileForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("Fichier de la banque (pain.002 ou camt.054, XML)"),
        error_messages={"required": gettext_lazy("Choisissez le fichier reçu de la banque.")},
    )

    def clean_file(self):
        uploaded = self.cleaned_data["file"]
        limit = bank_xml.max_bytes()
        if uploaded.size > limit:
            raise forms.ValidationError(
                gettext_lazy("Fichier trop volumineux : %(size)s octets, %(limit)s au plus."),
                params={"size": uploaded.size, "limit": limit},
            )
        return uploaded


def returns_staff_required(view):
    """Treasury and admins of the operator; everyone else gets a plain 404."""

    @login_required
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not roles.is_operator(request.user, RETURNS_ROLES):
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


def _page(request, form: BankFileForm, *, refusal: str = "", status: int = 200):
    recent = BankFileImport.objects.select_related("run", "imported_by")[:RECENT]
    return render(
        request,
        "payments/returns/upload.html",
        {"form": form, "refusal": refusal, "imports": recent},
        status=status,
    )


@returns_staff_required
@step_up_required
def returns_home(request):
    return _page(request, BankFileForm())


@returns_staff_required
@require_POST
@step_up_required
def returns_upload(request):
    form = BankFileForm(request.POST, request.FILES)
    if not form.is_valid():
        return _page(request, form, status=400)
    uploaded = form.cleaned_data["file"]
    content = b"".join(uploaded.chunks())
    try:
        result = import_bank_file(content, user=request.user)
    except BankFileRefused as exc:
        record_event(
            "payments.bank_file_refused",
            request=request,
            sha256=hashlib.sha256(content).hexdigest(),
            size=len(content),
            reason=exc.message[:300],
        )
        return _page(request, BankFileForm(), refusal=exc.message, status=400)
    summary = result.summary
    messages.success(
        request,
        _("Fichier importé : %(rejected)s virement(s) rejeté(s), %(settled)s réglé(s).")
        % {"rejected": summary["rejected"], "settled": summary["settled"]},
    )
    return redirect("payments_returns:detail", pk=result.bank_file.pk)


@returns_staff_required
def returns_detail(request, pk: int):
    bank_file = get_object_or_404(BankFileImport.objects.select_related("run", "imported_by"), pk=pk)
    summary = bank_file.summary or {}
    returned = summary.get("returned", [])[:SHOWN]
    statuses = dict(
        Payment.objects.filter(pk__in=[item["payment_id"] for item in returned]).values_list("pk", "status")
    )
    rows = [
        {
            **item,
            "reason_label": return_reasons.label(item["reason"]),
            "account": return_reasons.reason(item["reason"]).account,
            "status": Payment.Status(statuses[item["payment_id"]]).label
            if item["payment_id"] in statuses
            else "",
        }
        for item in returned
    ]
    return render(
        request,
        "payments/returns/detail.html",
        {
            "bank_file": bank_file,
            "summary": summary,
            "rows": rows,
            "hidden": max(0, summary.get("rejected", 0) - SHOWN),
            "pending": sorted(summary.get("pending", {}).items()),
        },  # fmt: skip
    )
