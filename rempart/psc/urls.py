"""PSC's login and callback, under /accounts/ (allauth includes a provider's ``urls`` module itself)."""

from django.urls import path

from rempart.psc import views

urlpatterns = [
    path("psc/login/", views.login, name="psc_login"),
    path("psc/login/callback/", views.callback, name="psc_callback"),
]
