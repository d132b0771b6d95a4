from django.urls import path

from rempart.incidents import views

app_name = "incidents"

urlpatterns = [
    path("operateur/incidents/", views.incident_list, name="list"),
    path("operateur/incidents/nouveau/", views.incident_new, name="new"),
    path("operateur/incidents/<int:pk>/", views.incident_detail, name="detail"),
    path("operateur/incidents/<int:pk>/perimetre/", views.scope_preview, name="scope"),
    path("operateur/incidents/<int:pk>/perimetres/<int:scope_pk>/relancer/", views.scope_rerun, name="rerun"),
    path(
        "operateur/incidents/<int:pk>/perimetres/<int:scope_pk>/notifications/",
        views.generate,
        name="generate",
    ),
    path(
        "operateur/incidents/<int:pk>/perimetres/<int:scope_pk>/publier/<int:insurer_pk>/",
        views.publish,
        name="publish",
    ),
    path("operateur/incidents/<int:pk>/statut/", views.change_status, name="status"),
    path("operateur/incidents/<int:pk>/mesure/", views.add_text, {"kind": "measure"}, name="measure"),
    path("operateur/incidents/<int:pk>/note/", views.add_text, {"kind": "note"}, name="note"),
    path("operateur/incidents/<int:pk>/documents/<int:document_pk>/", views.download, name="download"),
    path("assureur/incidents/", views.insurer_notices, name="insurer_notices"),
    path("assureur/incidents/documents/<int:document_pk>/", views.insurer_download, name="insurer_download"),
]
