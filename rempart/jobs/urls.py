from django.urls import path

from rempart.jobs import views

app_name = "jobs"

urlpatterns = [
    path("taches/<uuid:pk>/", views.job_detail, name="detail"),
    path("taches/<uuid:pk>/etat/", views.job_state, name="state"),
    path("operateur/taches/", views.console, name="console"),
    path("operateur/taches/<uuid:pk>/relancer/", views.job_retry, name="retry"),
    path("operateur/taches/<uuid:pk>/annuler/", views.job_cancel, name="cancel"),
]
