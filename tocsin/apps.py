from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class TocsinConfig(AppConfig):
    default = True
    name = "tocsin"
    verbose_name = "Tocsin"

    def ready(self) -> None:
        from tocsin import signals  # noqa: F401  (connects receivers)
        from tocsin.live.publish import connect_publisher
        from tocsin.two_factor import signals as two_factor_signals  # noqa: F401

        # No heartbeat schedule: `manage.py worker` writes its own (tocsin.duework), so a busy
        # queue never makes a working worker look dead.
        connect_publisher()  # with Redis, every process announces its commits to the web processes
        # The audit chain (tocsin.audit.chain): events are sealed every minute, by one worker.
        from tocsin.scheduling import register

        register("tocsin.audit_seal", "tocsin.audit.tasks.seal_events", minutes=1)


class TocsinAdminConfig(admin_apps.AdminConfig):
    """The Django admin, branded and with access decided by Tocsin's team roles."""

    default = False
    default_site = "tocsin.admin_site.TocsinAdminSite"
