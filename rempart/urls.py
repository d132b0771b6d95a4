from allauth.mfa.recovery_codes import views as recovery_views
from allauth.mfa.totp import views as totp_views
from allauth.mfa.webauthn import views as webauthn_views
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from rempart.accounts.stepup import step_up_required
from rempart.api import api

# Adding, removing or resetting a second factor asks for a fresh second factor first (step-up).
# These override allauth's routes of the same path and name.
stepped_up_mfa = [
    path("accounts/2fa/totp/activate/", step_up_required(totp_views.activate_totp), name="mfa_activate_totp"),
    path(
        "accounts/2fa/totp/deactivate/",
        step_up_required(totp_views.deactivate_totp),
        name="mfa_deactivate_totp",
    ),
    path(
        "accounts/2fa/webauthn/add/", step_up_required(webauthn_views.add_webauthn), name="mfa_add_webauthn"
    ),
    path(
        "accounts/2fa/webauthn/keys/<int:pk>/remove/",
        step_up_required(webauthn_views.remove_webauthn),
        name="mfa_remove_webauthn",
    ),
    path(
        "accounts/2fa/recovery-codes/generate/",
        step_up_required(recovery_views.generate_recovery_codes),
        name="mfa_generate_recovery_codes",
    ),
]

# A database outage is a 503 (JSON for the API, a page for people), never a 500 with a traceback.
handler500 = "rempart.outage.server_error"
# An unknown path under /api/ answers JSON like every other API error; people get the site's pages.
handler404 = "rempart.outage.not_found"
handler403 = "rempart.error_pages.permission_denied"
handler400 = "rempart.error_pages.bad_request"

urlpatterns = [
    path("favicon.ico", RedirectView.as_view(url="/static/rempart/favicon.svg", permanent=True)),
    *stepped_up_mfa,
    path("accounts/", include("allauth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("fhir/", include("rempart.fhir.urls")),  # FHIR R4 at /fhir/r4/ (docs/fhir.md)
    path("", include("rempart.ops.urls")),  # /healthz, /readyz, /metrics (answered first by its middleware)
    path("", include("rempart.registry.urls")),
    path("", include("rempart.ledger.urls")),
    path("", include("rempart.jobs.urls")),
    path("", include("rempart.rights.urls")),
    path("", include("rempart.incidents.urls")),
    path("", include("rempart.authorizations.urls")),
    path("", include("rempart.claims.urls")),
    path("comptoir/paiements/", include("rempart.payments.portal_urls")),
    path("operateur/paiements/retours/", include("rempart.payments.returns_urls")),  # before <reference>/
    path("operateur/paiements/", include("rempart.payments.console_urls")),
    # The billing treasury before the billing console's own include (its paths would shadow it).
    path("operateur/facturation/tresorerie/", include("rempart.billing.treasury_urls")),
    path("operateur/facturation/", include("rempart.billing.console_urls")),
    path("assureur/facturation/", include("rempart.billing.insurer_urls")),
    path("", include("rempart.surveillance.urls")),
    path("", include("rempart.psc.portal_urls")),  # the owner's Pro Santé Connect page (RPPS links)
    path("", include("rempart.accounts.urls")),
]
