from typing import Any

from django.conf import settings
from django.http import HttpRequest

from tocsin.permissions import may_use_admin


def tocsin(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    return {
        "TOCSIN_BASE_URL": settings.TOCSIN_BASE_URL,
        "can_use_admin": bool(user and user.is_authenticated and may_use_admin(user)),
    }
