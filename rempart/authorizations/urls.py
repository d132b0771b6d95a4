from django.urls import path

from rempart.authorizations import views

app_name = "authorizations"

urlpatterns = [
    path("comptoir/prise-en-charge/", views.ask, name="ask"),
    path("comptoir/prises-en-charge/", views.history, name="history"),
    path("comptoir/prises-en-charge/<str:number>/annuler/", views.cancel, name="cancel"),
]
