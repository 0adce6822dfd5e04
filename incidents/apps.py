from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = "Incidents"

    def ready(self) -> None:
        from incidents import signals  # noqa: F401  (alert events open and resolve incidents)
        from tocsin.scheduling import register

        # The rows are the truth; these runs catch up whatever the on-commit kicks missed.
        register(
            "incidents.advance_escalations", "incidents.escalation.advance_escalations", minutes=1
        )
        register("incidents.send_due_deliveries", "incidents.notify.send_due_deliveries", minutes=1)
