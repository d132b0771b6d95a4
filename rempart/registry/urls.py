from django.urls import path

from rempart.registry import views

app_name = "registry"

urlpatterns = [
    path("assureur/imports/", views.imports, name="imports"),
    path("assureur/imports/charger/", views.upload, name="upload"),
    path("assureur/imports/produits/", views.upload_products, name="upload_products"),
    path("assureur/imports/<int:pk>/", views.import_detail, name="import_detail"),
    path("assureur/imports/<int:pk>/rejets.csv", views.import_errors, name="import_errors"),
    path("assureur/registre/", views.registry_state, name="state"),
]
