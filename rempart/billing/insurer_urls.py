"""Insurer members' billing pages, mounted at ``assureur/facturation/`` (rempart/urls.py)."""

from django.urls import path

from rempart.billing import insurer_views as views

app_name = "billing_insurer"

urlpatterns = [
    path("", views.statement_list, name="statements"),
    path("encaissements/", views.receipts, name="receipts"),
    path("releves/<str:number>/", views.statement_detail, name="statement"),
    path("releves/<str:number>/releve.pdf", views.statement_pdf_view, name="statement_pdf"),
    path("releves/<str:number>/detail.csv", views.statement_detail_csv, name="statement_detail_csv"),
]
