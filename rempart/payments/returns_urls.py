"""The treasury's bank returns (included under ``operateur/paiements/retours/`` by rempart/urls.py, before the
runs console, whose ``<reference>/`` would otherwise take ``retours/``)."""

from django.urls import path

from rempart.payments import returns_views

app_name = "payments_returns"

urlpatterns = [
    path("", returns_views.returns_home, name="home"),
    path("importer/", returns_views.returns_upload, name="upload"),
    path("<int:pk>/", returns_views.returns_detail, name="detail"),
]
