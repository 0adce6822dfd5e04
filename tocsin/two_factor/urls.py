"""The login's code step and the person's two-factor pages (tocsin.ui_urls includes these)."""

from django.urls import path

from tocsin.two_factor import views

urlpatterns = [
    path("accounts/login/code/", views.login_code, name="login_code"),
    path("account/two-factor/", views.overview, name="two_factor"),
    path("account/two-factor/setup/", views.setup, name="two_factor_setup"),
    path("account/two-factor/recovery-codes/", views.recovery, name="two_factor_recovery"),
    path("account/two-factor/disable/", views.disable, name="two_factor_disable"),
]
