"""The operator's payment runs console (included under ``operateur/paiements/`` by rempart/urls.py)."""

from django.urls import path

from rempart.payments import console_views

app_name = "payments_console"

urlpatterns = [
    path("", console_views.run_list, name="runs"),
    path("preparer/", console_views.run_prepare, name="prepare"),  # before the references
    path("<str:reference>/", console_views.run_detail, name="detail"),
    path("<str:reference>/approuver/", console_views.run_approve, name="approve"),
    path("<str:reference>/annuler/", console_views.run_cancel, name="cancel"),
    path("<str:reference>/fichier/", console_views.run_file, name="file"),
]
