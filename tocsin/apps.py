from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class TocsinConfig(AppConfig):
    default = True
    name = "tocsin"
    verbose_name = "Tocsin"

    def ready(self) -> None:
        from tocsin import signals  # noqa: F401  (connects receivers)
        from tocsin.scheduling import register
        from tocsin.tasks import HEARTBEAT_SCHEDULE_NAME

        register(HEARTBEAT_SCHEDULE_NAME, "tocsin.tasks.worker_heartbeat", minutes=1)


class TocsinAdminConfig(admin_apps.AdminConfig):
    """The Django admin, branded and with access decided by Tocsin's team roles."""

    default = False
    default_site = "tocsin.admin_site.TocsinAdminSite"
