"""Insurer pages: the ledger's signed anchors, to download and keep outside the platform."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render

from rempart.accounts import roles
from rempart.accounts.models import Organisation
from rempart.ledger import anchors, publication
from rempart.ledger.models import LedgerAnchor

PAGE_SIZE = 200


def _insurer_member(request) -> Organisation:
    organisation = roles.organisation_of(request.user)
    if organisation is None or organisation.kind != Organisation.Kind.INSURER:
        raise Http404
    return organisation


def _attachment(content: str, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
def anchor_list(request):
    organisation = _insurer_member(request)
    stored = LedgerAnchor.objects.order_by("-number")[:PAGE_SIZE]
    context = {
        "organisation": organisation,
        "anchors": [publication.summary(anchor) for anchor in stored],
        "total": LedgerAnchor.objects.count(),
        "key_id": anchors.key_id(anchors.public_key()),
        "public_key": anchors.public_key_pem(),
    }
    return render(request, "ledger/anchors.html", context)


@login_required
def anchor_download(request, number: int):
    _insurer_member(request)
    anchor = get_object_or_404(LedgerAnchor, number=number)
    return _attachment(
        anchor.document, "application/json", anchors.file_name(anchor.number, anchor.anchored_at)
    )


@login_required
def anchor_all(request):
    _insurer_member(request)
    content = json.dumps(publication.anchor_list(), indent=1, ensure_ascii=False) + "\n"
    return _attachment(content, "application/json", "rempart-ledger-anchors.json")


@login_required
def public_key(request):
    _insurer_member(request)
    key_id = anchors.key_id(anchors.public_key())
    return _attachment(anchors.public_key_pem(), "application/x-pem-file", f"rempart-ledger-key-{key_id}.pem")
