"""The pages that carry a Pro Santé Connect button may send their form to PSC, and only those.

Rempart's Content-Security-Policy has ``form-action 'self'``, and browsers apply it to the redirect that
follows a form submission too: the PSC button (a POST to Rempart, answered by a redirect to PSC) would be
blocked. On the login page, the step-up prompt and PSC's own start page, PSC's authorization origin is
added to ``form-action``; every other page keeps the policy as it is.
"""

from __future__ import annotations

from django.conf import settings

from rempart.psc.config import psc_settings

PAGES = {"account_login", "mfa_reauthenticate", "psc_login"}


def policy_with(origin: str) -> str:
    directives = []
    for directive in settings.REMPART_CSP.split(";"):
        directive = directive.strip()
        if directive.split(" ")[0] == "form-action":
            directive = f"{directive} {origin}"
        if directive:
            directives.append(directive)
    return "; ".join(directives)


class PscFormActionMiddleware:
    """Placed after SecurityHeadersMiddleware (which only sets the policy when a response has none)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        if match is None or match.url_name not in PAGES or "Content-Security-Policy" in response.headers:
            return response
        config = psc_settings()
        if config.enabled and config.form_action_origin:
            response.headers["Content-Security-Policy"] = policy_with(config.form_action_origin)
        return response
