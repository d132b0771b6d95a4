"""The operator's treasury for insurer billing: ageing, receipts, receipts by hand, camt.054 import, pain.008.

Thin: ``ageing``, ``receipts``, ``collection`` and ``overdue`` decide and record. Operator treasury, admin and
support staff see the pages; only the treasury records, approves or discards a receipt, imports a bank file
or makes a direct-debit file, each with a fresh second factor (a pain.008 holds IBANs in clear; a receipt moves
money). Cutting tiers payant for an overdue insurer: treasury, admin or security, fresh second factor too.
Anyone else gets a plain 404. Insurers' IBANs are shown masked only.
"""

from __future__ import annotations

import functools
import hashlib
import re

from allauth.mfa.models import Authenticator
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from rempart.accounts import roles
from rempart.accounts.events import record_event
from rempart.accounts.models import Role
from rempart.accounts.stepup import second_factor_is_fresh, step_up_redirect
from rempart.billing import ageing, collection, debit_return_reasons, overdue, receipts
from rempart.billing.models import CollectionFile, Receipt, Statement
from rempart.payments.bank_xml import max_bytes
from rempart.registry.models import Insurer
from rempart.surveillance.models import Alert, Switch

VIEW_ROLES = {Role.TREASURY, Role.ADMIN, Role.SUPPORT}
_MONEY = re.compile(r"^(\d{1,12})(?:[,.](\d{1,2}))?$")


def treasury_console(view):
    """Operator treasury, admin or support; anyone else gets a 404 (never a second-factor prompt)."""

    @login_required
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not roles.is_operator(request.user, VIEW_ROLES | overdue.SWITCH_ROLES):
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


def _stale(request):
    """A redirect to the second-factor prompt when this session's proof is not fresh, else None."""
    if second_factor_is_fresh(request) or not Authenticator.objects.filter(user=request.user).exists():
        return None
    return step_up_redirect(request)


def _treasury_only(request) -> None:
    if not receipts.can_record(request.user):
        raise Http404


def cents_of_euros(text: str) -> int | None:
    """ "1 234,56" / "1234.5" / "12" → cents, without a float; None when unreadable."""
    match = _MONEY.match((text or "").replace(" ", "").replace("\u00a0", "").replace("\u202f", ""))
    if not match:
        return None
    return int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))


class ManualReceiptForm(forms.Form):
    insurer = forms.ModelChoiceField(
        label=gettext_lazy("Assureur"), queryset=Insurer.objects.order_by("name")
    )
    statement = forms.CharField(
        label=gettext_lazy("Numéro de relevé (facultatif)"), max_length=40, required=False
    )
    amount = forms.CharField(label=gettext_lazy("Montant reçu (€)"), max_length=20)
    received_on = forms.DateField(
        label=gettext_lazy("Reçu le"), widget=forms.DateInput(attrs={"type": "date"})
    )
    reference = forms.CharField(label=gettext_lazy("Référence du virement"), max_length=140)

    def clean_amount(self) -> int:
        cents = cents_of_euros(self.cleaned_data["amount"])
        if not cents:
            raise forms.ValidationError(_("Montant illisible : un nombre positif comme 1234,56 est attendu."))
        return cents

    def clean(self):
        data = super().clean()
        number = (data.get("statement") or "").strip()
        data["statement_obj"] = None
        if number and data.get("insurer"):
            found = Statement.objects.filter(number=number, insurer=data["insurer"]).first()
            if found is None:
                self.add_error("statement", _("Aucun relevé de cet assureur avec ce numéro."))
            data["statement_obj"] = found
        return data


class ImportForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("Avis de crédit camt.054 (XML)"))


class CollectionForm(forms.Form):
    collection_date = forms.DateField(
        label=gettext_lazy("Date d'échéance du prélèvement"), widget=forms.DateInput(attrs={"type": "date"})
    )


@treasury_console
def overview(request):
    """The ageing table (from the ledger), overdue insurers and their open alerts, receipts waiting."""
    today = timezone.localdate()
    rows = ageing.positions(today)
    late = {o.insurer_id: o for o in overdue.overdue_insurers(today)}
    alerts = {
        a.evidence.get(overdue.SIGNAL, {}).get("insurer_id"): a
        for a in Alert.objects.filter(
            signal=overdue.SIGNAL, status__in=(Alert.Status.OPEN, Alert.Status.ACKNOWLEDGED)
        )
    }
    cut = {s.insurer_id for s in Switch.objects.filter(target=Switch.Target.INSURER, on_at__isnull=True)}
    table = [
        (row, late.get(row.insurer_id), alerts.get(row.insurer_id), row.insurer_id in cut) for row in rows
    ]
    context = {
        "today": today,
        "table": table,
        "totals": ageing.totals(rows),
        "pending": receipts.pending_manual_receipts(),
        "can_record": receipts.can_record(request.user),
        "can_switch": overdue.can_switch_off(request.user),
        "threshold": receipts.four_eyes_threshold(),
    }
    return render(request, "billing/treasury/overview.html", context)


@treasury_console
def receipt_list(request):
    page = Paginator(
        Receipt.objects.select_related("insurer", "statement", "recorded_by", "approved_by"), 50
    ).get_page(request.GET.get("page"))
    for receipt in page:  # a returned direct debit's reason, as a label in the reader's language
        receipt.return_label = (
            debit_return_reasons.label(receipt.return_reason) if receipt.return_transaction_id else ""
        )
    return render(
        request,
        "billing/treasury/receipts.html",
        {"page": page, "can_record": receipts.can_record(request.user)},
    )


@treasury_console
def receipt_new(request):
    _treasury_only(request)
    stale = _stale(request)
    if stale is not None:
        return stale
    form = ManualReceiptForm(request.POST or None, initial={"received_on": timezone.localdate()})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            receipt = receipts.record_manual_receipt(
                insurer=data["insurer"], statement=data["statement_obj"], amount_cents=data["amount"],
                received_on=data["received_on"], reference=data["reference"], user=request.user, request=request,
            )  # fmt: skip
        except receipts.ReceiptError as exc:
            form.add_error(None, exc.message)
        else:
            if receipt.transaction_id is None:
                messages.warning(
                    request,
                    _("Encaissement enregistré : au-delà du seuil, une seconde personne de la trésorerie doit "
                      "l'approuver avant qu'il soit comptabilisé."),
                )  # fmt: skip
            else:
                messages.success(request, _("Encaissement comptabilisé."))
            return redirect("billing_treasury:overview")
    status = 400 if form.errors else 200
    context = {"form": form, "threshold": receipts.four_eyes_threshold(), "can_record": True}
    return render(request, "billing/treasury/receipt_new.html", context, status=status)


@treasury_console
@require_POST
def receipt_approve(request, pk: int):
    _treasury_only(request)
    stale = _stale(request)
    if stale is not None:
        return stale
    receipt = get_object_or_404(Receipt, pk=pk, source=Receipt.Source.MANUAL)
    try:
        receipts.approve_manual_receipt(receipt, user=request.user, request=request)
    except receipts.ReceiptError as exc:
        messages.error(request, exc.message)
        return redirect("billing_treasury:overview")
    messages.success(request, _("Encaissement approuvé et comptabilisé."))
    return redirect("billing_treasury:overview")


@treasury_console
@require_POST
def receipt_discard(request, pk: int):
    """Discard a manual receipt waiting for its second person (its author or another treasury member)."""
    _treasury_only(request)
    stale = _stale(request)
    if stale is not None:
        return stale
    receipt = get_object_or_404(Receipt, pk=pk, source=Receipt.Source.MANUAL)
    try:
        receipts.discard_manual_receipt(
            receipt, user=request.user, reason=request.POST.get("reason", "")[:300], request=request
        )
    except receipts.ReceiptError as exc:
        messages.error(request, exc.message)
        return redirect("billing_treasury:overview")
    messages.success(request, _("Encaissement écarté : il ne sera pas comptabilisé."))
    return redirect("billing_treasury:overview")


@treasury_console
def import_receipts(request):
    _treasury_only(request)
    stale = _stale(request)
    if stale is not None:
        return stale
    form = ImportForm(request.POST or None, request.FILES or None)
    result = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        content = upload.read(max_bytes() + 1)  # the reader refuses what is larger
        try:
            result = receipts.import_camt054(content, user=request.user, request=request)
        except receipts.ReceiptError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(
                request,
                _("%(n)s encaissement(s) comptabilisé(s), %(total)s centimes.")
                % {"n": len(result.receipts), "total": result.total_cents},
            )
            if result.returns:
                messages.warning(
                    request,
                    _("%(n)s prélèvement(s) rejeté(s) par la banque de l'assureur, %(total)s centimes : créance "
                      "rouverte, alerte levée.") % {"n": len(result.returns), "total": result.returned_cents},
                )  # fmt: skip
            return redirect("billing_treasury:receipts")
    status = 400 if form.errors else 200
    return render(request, "billing/treasury/import.html", {"form": form, "can_record": True}, status=status)


@treasury_console
def collection_page(request):
    """Collectable statements, the files made, and making one (treasury, fresh second factor)."""
    form = CollectionForm(request.POST or None)
    if request.method == "POST":
        _treasury_only(request)
        stale = _stale(request)
        if stale is not None:
            return stale
        if form.is_valid():
            try:
                made = collection.make_collection_file(
                    collection_date=form.cleaned_data["collection_date"], user=request.user, request=request
                )
            except (collection.CollectionError, collection.BankFileInvalid) as exc:
                form.add_error(None, getattr(exc, "message", None) or str(exc))
            else:
                messages.success(
                    request, _("Fichier de prélèvements %(ref)s émis.") % {"ref": made.reference}
                )
                return redirect("billing_treasury:collection")
    context = {
        "form": form,
        "collectable": collection.collectable(),
        "files": CollectionFile.objects.select_related("created_by")[:50],
        "can_make": receipts.can_record(request.user),
        "can_record": receipts.can_record(request.user),
    }
    return render(request, "billing/treasury/collection.html", context, status=400 if form.errors else 200)


@treasury_console
def collection_file(request, reference: str):
    """The stored pain.008 byte for byte, after its SHA-256 is checked (it holds IBANs: treasury, step-up)."""
    _treasury_only(request)
    stale = _stale(request)
    if stale is not None:
        return stale
    made = get_object_or_404(CollectionFile, reference=reference)
    content = bytes(made.file_content)
    if hashlib.sha256(content).hexdigest() != made.file_sha256:
        raise Http404
    record_event(
        "billing.collection_downloaded", request=request, reference=made.reference, sha256=made.file_sha256
    )
    response = HttpResponse(content, content_type="application/xml")
    response["Content-Disposition"] = f'attachment; filename="{made.reference}.xml"'
    return response


@treasury_console
@require_POST
def switch_off(request, insurer_pk: int):
    if not overdue.can_switch_off(request.user):
        raise Http404
    stale = _stale(request)
    if stale is not None:
        return stale
    insurer = get_object_or_404(Insurer, pk=insurer_pk)
    alert = Alert.objects.filter(
        signal=overdue.SIGNAL, evidence__insurer_overdue__insurer_id=insurer.pk,
        status__in=(Alert.Status.OPEN, Alert.Status.ACKNOWLEDGED),
    ).first()  # fmt: skip
    overdue.switch_off_insurer(
        insurer,
        user=request.user,
        reason=(request.POST.get("reason") or "")[:300],
        alert=alert,
        request=request,
    )
    messages.success(
        request,
        _("Tiers payant coupé pour les cartes de %(name)s : leurs vérifications de droits sont refusées avec un "
          "message clair, tout le reste continue. Rétablissement : surveillance, coupures.") % {"name": insurer.name},
    )  # fmt: skip
    return redirect("billing_treasury:overview")
