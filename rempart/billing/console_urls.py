"""The operator's insurer statements console (included under ``operateur/facturation/`` by rempart/urls.py)."""

from django.urls import path

from rempart.billing import console_views

app_name = "billing_console"

urlpatterns = [
    path("", console_views.statement_list, name="statements"),
    path("<str:number>/", console_views.statement_detail, name="detail"),
    path("<str:number>/pdf/", console_views.statement_pdf_view, name="pdf"),
    path("<str:number>/detail.csv", console_views.statement_detail_csv, name="detail_csv"),
    path("<str:number>/rectifier/", console_views.statement_correct, name="correct"),
]
