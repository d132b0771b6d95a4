"""The two addresses PSC's flow goes through: the start of a login (or step-up), and PSC's answer."""

from __future__ import annotations

from allauth.account.internal.decorators import login_not_required
from allauth.socialaccount.models import SocialApp
from allauth.socialaccount.providers.oauth2.views import OAuth2LoginView
from django.http import Http404, HttpRequest, HttpResponse

from rempart.psc.provider import PscCallbackView, PscOAuth2Adapter


@login_not_required
def login(request: HttpRequest) -> HttpResponse:
    try:
        return OAuth2LoginView.adapter_view(PscOAuth2Adapter(request))(request)
    except SocialApp.DoesNotExist:  # PSC is not configured: no such page
        raise Http404 from None


@login_not_required
def callback(request: HttpRequest) -> HttpResponse:
    try:
        return PscCallbackView.adapter_view(PscOAuth2Adapter(request))(request)
    except SocialApp.DoesNotExist:
        raise Http404 from None
