"""URLs of the web UI (the API lives under /api/v1/, the admin under /admin/)."""

from django.contrib.auth import views as auth_views
from django.urls import include, path

from tocsin import views
from tocsin.audit import views as audit_views
from tocsin.auth import LoginForm
from tocsin.dashboard import views as dashboard_views
from tocsin.security import views as security_views
from tocsin.two_factor.views import TwoStepLoginView

auth_urls = [
    path(
        "accounts/login/",
        # Asks for the second factor after the password when the person has one.
        TwoStepLoginView.as_view(
            template_name="tocsin/auth/login.html",
            redirect_authenticated_user=True,
            authentication_form=LoginForm,
        ),
        name="login",
    ),
    # Django's LogoutView only accepts POST: a link or an image tag cannot sign anyone out.
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Wrong old passwords count as failed sign-ins (tocsin.auth.PasswordChangeForm).
    path("accounts/password/", views.password_change, name="password_change"),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(
            template_name="tocsin/auth/password_change_done.html"
        ),
        name="password_change_done",
    ),
    path("", include("tocsin.two_factor.urls")),
]

# Features that arrive in later issues: each replaces its line here with its own URLs.

urlpatterns = [
    *auth_urls,
    path("", dashboard_views.dashboard, name="dashboard"),
    path("dashboard/tiles/<slug:name>/", dashboard_views.dashboard_tile, name="dashboard_tile"),
    path("live/", views.live, name="live"),
    path("audit/", audit_views.audit, name="audit"),
    path("security/", security_views.security, name="security"),
    path("teams/", views.team_list, name="teams"),
    path("teams/new/", views.team_create, name="team_create"),
    path("teams/<slug:slug>/", views.team_detail, name="team"),
    path("teams/<slug:slug>/edit/", views.team_update, name="team_update"),
    path("teams/<slug:slug>/members/", views.member_add, name="member_add"),
    path(
        "teams/<slug:slug>/members/<int:membership_id>/role/",
        views.member_role,
        name="member_role",
    ),
    path(
        "teams/<slug:slug>/members/<int:membership_id>/remove/",
        views.member_remove,
        name="member_remove",
    ),
    path("teams/<slug:slug>/test-event/", views.team_test_event, name="team_test_event"),
    path("account/tokens/", views.tokens, name="tokens"),
    path("account/tokens/<int:pk>/revoke/", views.token_revoke, name="token_revoke"),
]
