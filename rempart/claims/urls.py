from django.urls import path

from rempart.claims import views

app_name = "claims"

urlpatterns = [
    path("comptoir/factures/", views.claims_list, name="list"),
    path("comptoir/factures/nouvelle/", views.invoice_new, name="new"),  # before the invoice numbers
    path("comptoir/factures/<str:invoice_number>/", views.claim_detail, name="detail"),
    path("comptoir/prises-en-charge/<str:number>/facturer/", views.invoice_pec, name="invoice_pec"),
    path("operateur/factures/examen/", views.review_queue, name="review_queue"),
    path("operateur/factures/examen/<int:pk>/", views.review_decide, name="review"),
]
