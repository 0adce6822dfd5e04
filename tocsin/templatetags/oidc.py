"""``{% oidc_button next %}``: the login page's "Sign in with …" link, when SSO is configured."""

from django import template

from tocsin import oidc

register = template.Library()


@register.inclusion_tag("tocsin/auth/_oidc_button.html")
def oidc_button(next_url: str = "") -> dict:
    return {"sso": oidc.login_button(next_url or "")}
