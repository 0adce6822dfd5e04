from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = "Incidents"

    def ready(self) -> None:
        from incidents import dashboard, slos
        from incidents.lifecycle import subscribers
        from incidents.lifecycle.alert_incident import incident_for_alert
        from incidents.lifecycle.retention import alerts_incidents_need
        from incidents.lifecycle.service_paging import describe_service_paging, grouping_preview
        from incidents.models import ServiceIncidentSettings
        from incidents.notifications import resolved
        from incidents.slas import services as slas
        from monitoring.incident_links import register_incident_finder
        from monitoring.ingest import key_cache
        from monitoring.retention import keep_alerts_where
        from monitoring.service_setup import register_grouping_preview, register_paging_describer
        from tocsin.events import on_event, on_events
        from tocsin.scheduling import DueWork, register, register_due_work

        # The one seam from monitoring: alert events open, acknowledge and resolve incidents.
        subscribers.subscribe()
        dashboard.register_tiles()  # the dashboard's incident, on-call and action-item tiles
        # The "incidents" SLI (minutes without an open P1/P2 incident) for monitoring's SLOs.
        slos.register_indicator()
        # Incident events start, re-count and stop the response-SLA clocks.
        on_events(slas.CLOCK_EVENTS, slas.on_incident_events)
        # Those paged for an incident hear when it resolves (through the outbox).
        on_event("incident.resolved", resolved.notify_paged)

        # Ingest remembers each service's incident settings (ServiceIncidentSettings.for_ingest).
        key_cache.forget_when_changed(ServiceIncidentSettings)

        # Alert retention keeps the alerts of open and recently resolved incidents.
        keep_alerts_where("incidents", alerts_incidents_need)
        # The alert page says which incident an alert joined.
        register_incident_finder(incident_for_alert)
        # The service page's paging panel and setup checklist.
        register_paging_describer(describe_service_paging)
        register_grouping_preview(grouping_preview)

        # Paging: the due-work loop of `manage.py worker` claims these the moment they are due.
        register_due_work(
            DueWork(
                name="escalation",
                func="incidents.escalation.engine.advance_escalations",
                run="incidents.escalation.engine.run_due",
                next_due="incidents.escalation.engine.next_due_at",
            )
        )
        register_due_work(
            DueWork(
                name="deliveries",
                func="incidents.notifications.outbox.send_due_deliveries",
                run="incidents.notifications.sending.dispatch_due",
                next_due="incidents.notifications.sending.next_due",
                drain="incidents.notifications.sending.drain",
            )
        )
        # The rows are the truth; these runs catch up whatever a loop or a wake-up missed.
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
        # Last month's SLA report to each team's managers, once, in a month's first days.
        register("incidents.sla_reports", "incidents.reports.sla_mail.send_monthly_reports", 60)
        # Status page subscribers: the outbox of their mails and webhooks (woken on each post).
        register("incidents.status_deliveries", "incidents.statuspages.subscribers.send_due", 1)
        register("incidents.status_uptime", "incidents.statuspages.snapshot.warm_uptimes", 4)
