from django.urls import path

from rempart.ledger import views

app_name = "ledger"

urlpatterns = [
    path("assureur/registre/ancres/", views.anchor_list, name="anchors"),
    path("assureur/registre/ancres/toutes.json", views.anchor_all, name="anchors_json"),
    path("assureur/registre/ancres/<int:number>.json", views.anchor_download, name="anchor_download"),
    path("assureur/registre/cle-publique.pem", views.public_key, name="public_key"),
]
