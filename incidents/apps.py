from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = "Incidents"

    def ready(self) -> None:
        # Receivers: alert events open and resolve incidents; incident events set SLA due times.
        from incidents import signals, slas  # noqa: F401
        from tocsin.scheduling import register

        # The rows are the truth; these runs catch up whatever the on-commit kicks missed.
        register(
            "incidents.advance_escalations", "incidents.escalation.advance_escalations", minutes=1
        )
        register("incidents.send_due_deliveries", "incidents.notify.send_due_deliveries", minutes=1)
        register("incidents.record_sla_breaches", "incidents.slas.record_due_breaches", minutes=1)
