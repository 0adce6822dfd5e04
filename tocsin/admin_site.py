"""The branded admin site; who may enter is decided by team roles, not Django's is_staff."""

from django.contrib import admin
from django.http import HttpRequest

from tocsin.permissions import may_use_admin


class TocsinAdminSite(admin.AdminSite):
    site_header = "Tocsin administration"
    site_title = "Tocsin admin"
    index_title = "Configuration"

    def has_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and may_use_admin(request.user))
