"""The professionals' *Paiements* pages (included under ``comptoir/paiements/`` by rempart/urls.py)."""

from django.urls import path

from rempart.payments import portal_views

app_name = "payments_portal"

urlpatterns = [
    path("", portal_views.payment_list, name="list"),
    path("<str:reference>/", portal_views.payment_detail, name="detail"),
    path("<str:reference>/releve.pdf", portal_views.statement_pdf, name="statement_pdf"),
    path("<str:reference>/releve.csv", portal_views.statement_csv, name="statement_csv"),
]
