from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = "Incidents"

    def ready(self) -> None:
        from incidents.lifecycle import subscribers
        from incidents.slas import services as slas
        from tocsin.events import on_event
        from tocsin.scheduling import register

        # The one seam from monitoring: alert events open, acknowledge and resolve incidents.
        subscribers.subscribe()
        # Incident events start, re-count and stop the response-SLA clocks.
        on_event(slas.CLOCK_EVENTS, slas.on_incident_event)

        # The rows are the truth; these runs catch up whatever the on-commit kicks missed.
        register(
            "incidents.advance_escalations",
            "incidents.escalation.engine.advance_escalations",
            minutes=1,
        )
        register(
            "incidents.send_due_deliveries",
            "incidents.notifications.outbox.send_due_deliveries",
            minutes=1,
        )
        register(
            "incidents.record_sla_breaches",
            "incidents.slas.services.record_due_breaches",
            minutes=1,
        )
