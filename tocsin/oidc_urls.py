"""Single sign-on URLs: only when OpenID Connect is configured (otherwise they are 404s)."""

from django.conf import settings
from django.urls import path

urlpatterns = []
if settings.TOCSIN_OIDC_ENABLED:
    from tocsin import oidc

    urlpatterns = [
        path("authenticate/", oidc.SignInView.as_view(), name="oidc_authentication_init"),
        path("callback/", oidc.CallbackView.as_view(), name="oidc_authentication_callback"),
    ]
