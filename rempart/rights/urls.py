from django.urls import path

from rempart.rights import views

app_name = "rights"

urlpatterns = [
    path("comptoir/droits/", views.check, name="check"),
    path("comptoir/historique/", views.history, name="history"),
]
