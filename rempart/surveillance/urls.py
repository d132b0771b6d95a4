from django.urls import path

from rempart.surveillance import queue_views, views

app_name = "surveillance"

urlpatterns = [
    path("operateur/surveillance/", queue_views.alert_queue, name="alerts"),
    path("operateur/surveillance/direct/", queue_views.alert_queue_live, name="alerts_live"),
    path("operateur/surveillance/alertes/<int:pk>/attribuer/", queue_views.alert_assign, name="alert_assign"),
    path("operateur/surveillance/suspendus/", queue_views.suspended_list, name="suspended"),
    path("operateur/surveillance/alertes/<int:pk>/statut/", views.alert_status, name="alert_status"),
    path("operateur/surveillance/comptes/<int:pk>/", views.account_page, name="account"),
    path("operateur/surveillance/comptes/<int:pk>/suspendre/", views.account_suspend, name="account_suspend"),
    path("operateur/surveillance/comptes/<int:pk>/retablir/", views.account_restore, name="account_restore"),
    path("operateur/surveillance/jetons/<int:pk>/", views.token_page, name="token"),
    path("operateur/surveillance/jetons/<int:pk>/suspendre/", views.token_suspend, name="token_suspend"),
    path("operateur/surveillance/jetons/<int:pk>/retablir/", views.token_restore, name="token_restore"),
    path("operateur/surveillance/coupures/", views.switches_panel, name="switches"),
    path("operateur/surveillance/coupures/<int:pk>/retablir/", views.switch_on, name="switch_on"),
    path("operateur/surveillance/canaris/", views.canary_panel, name="canaries"),
    path("operateur/surveillance/canaris/<int:pk>/cartes/", views.canary_cards, name="canary_cards"),
]
