from django.urls import path

from rempart.accounts import bank_views, operator_views, views

app_name = "accounts"

urlpatterns = [
    path("", views.home, name="home"),
    path("compte/second-facteur/", views.enrol, name="enrol"),
    path("compte/securite/", views.security, name="security"),
    path("compte/securite/deconnexion-partout/", views.logout_everywhere, name="logout_everywhere"),
    path("invitation/<str:token>/", views.accept_invitation, name="accept_invitation"),
    path("organisation/membres/", views.members, name="members"),
    path("organisation/membres/inviter/", views.invite, name="invite"),
    path("organisation/membres/<int:pk>/role/", views.change_role, name="change_role"),
    path("organisation/membres/<int:pk>/retirer/", views.remove_member, name="remove_member"),
    path("organisation/invitations/<int:pk>/annuler/", views.revoke_invitation, name="revoke_invitation"),
    path("organisation/evenements/", views.organisation_events, name="organisation_events"),
    path("organisation/jetons/", views.token_list, name="tokens"),
    path("organisation/jetons/creer/", views.token_create, name="token_create"),
    path("organisation/jetons/<int:pk>/revoquer/", views.token_revoke, name="token_revoke"),
    path("organisation/banque/", bank_views.bank_details, name="bank_details"),
    path("organisation/banque/modifier/", bank_views.bank_details_change, name="bank_details_change"),
    path("organisation/banque/<int:pk>/annuler/", bank_views.bank_change_cancel, name="bank_change_cancel"),
    path("operateur/banque/", bank_views.operator_bank_changes, name="operator_bank_changes"),
    path(
        "operateur/banque/<int:pk>/annuler/",
        bank_views.operator_bank_change_cancel,
        name="operator_bank_change_cancel",
    ),
    path("operateur/evenements/", operator_views.all_events, name="operator_events"),
    path("operateur/suspensions/", operator_views.suspensions, name="operator_suspensions"),
    path("operateur/comptes/suspendre/", operator_views.suspend_by_email, name="operator_suspend_by_email"),
    path(
        "operateur/comptes/<int:pk>/suspendre/",
        operator_views.suspend_account,
        name="operator_suspend_account",
    ),
    path(
        "operateur/comptes/<int:pk>/retablir/",
        operator_views.restore_account,
        name="operator_restore_account",
    ),
    path(
        "operateur/organisations/<int:pk>/suspendre/",
        operator_views.suspend_organisation,
        name="operator_suspend_organisation",
    ),
    path(
        "operateur/organisations/<int:pk>/retablir/",
        operator_views.restore_organisation,
        name="operator_restore_organisation",
    ),
]
