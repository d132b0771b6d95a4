from django.urls import path

from rempart.psc import portal

app_name = "psc"

urlpatterns = [
    path("organisation/pro-sante-connect/", portal.members, name="members"),
    path("organisation/pro-sante-connect/<int:pk>/relier/", portal.link_member, name="link"),
    path("organisation/pro-sante-connect/<int:pk>/detacher/", portal.unlink_member, name="unlink"),
]
