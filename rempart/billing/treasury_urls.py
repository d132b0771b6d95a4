"""The operator's billing treasury (included under ``operateur/facturation/tresorerie/`` by rempart/urls.py)."""

from django.urls import path

from rempart.billing import treasury_views

app_name = "billing_treasury"

urlpatterns = [
    path("", treasury_views.overview, name="overview"),
    path("encaissements/", treasury_views.receipt_list, name="receipts"),
    path("encaissements/saisir/", treasury_views.receipt_new, name="receipt_new"),
    path("encaissements/<int:pk>/approuver/", treasury_views.receipt_approve, name="receipt_approve"),
    path("encaissements/<int:pk>/ecarter/", treasury_views.receipt_discard, name="receipt_discard"),
    path("encaissements/importer/", treasury_views.import_receipts, name="import"),
    path("prelevements/", treasury_views.collection_page, name="collection"),
    path("prelevements/<str:reference>/fichier/", treasury_views.collection_file, name="collection_file"),
    path("assureurs/<int:insurer_pk>/couper/", treasury_views.switch_off, name="switch_off"),
]
