from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring"

    def ready(self) -> None:
        from django.conf import settings

        from monitoring import dashboard, security
        from monitoring.ingest import key_cache
        from monitoring.slos.kinds import register_all as register_slo_indicators
        from tocsin.scheduling import register

        # tocsin's sign-in lockouts and new administrators raise alerts (monitoring.security).
        security.subscribe()

        # Remembered ingest keys are forgotten when an integration or service changes.
        key_cache.connect()
        register_slo_indicators()
        dashboard.register_tiles()  # the dashboard's monitoring tiles

        # Silences and maintenance windows start and end on their own; re-check firing alerts.
        register(
            "monitoring.reevaluate_suppressions",
            "monitoring.suppression.evaluate.reevaluate_suppressions",
            minutes=1,
        )
        register("monitoring.evaluate_rules", "monitoring.metrics.rules.evaluate_rules", minutes=1)
        register(
            "monitoring.collect_host_metrics",
            "monitoring.metrics.host.collect_host_metrics",
            minutes=1,
        )
        # Registered databases' health (monitoring.databases): a task, never the due-work loop.
        register(
            "monitoring.collect_databases",
            "monitoring.databases.collection.collect_due",
            minutes=1,
        )
        # Firing alerts whose sender's expected end (endsAt) passed without a re-send resolve.
        register("monitoring.expire_alerts", "monitoring.pipeline.expire_alerts", minutes=1)
        # The audit chains are verified; a break raises a security alert (monitoring.audit_check).
        register(
            "monitoring.check_audit_chains",
            "monitoring.audit_check.check_audit_chains",
            minutes=settings.TOCSIN_AUDIT_VERIFY_MINUTES,
        )
        # …and once a day from the start: what changed after its quick check shows too.
        register(
            "monitoring.check_audit_chains_fully",
            "monitoring.audit_check.check_audit_chains_fully",
            minutes=24 * 60,
        )
        # Resolved alerts older than TOCSIN_ALERT_RETENTION_DAYS go (monitoring.retention).
        register(
            "monitoring.prune_resolved_alerts",
            "monitoring.retention.prune_resolved_alerts",
            minutes=60,
        )
        # SLOs: figures for the lists, burn-rate alerts (monitoring.slos.evaluation).
        register("monitoring.evaluate_slos", "monitoring.slos.evaluation.evaluate_all", minutes=1)
        register(
            "monitoring.downsample_metrics",
            "monitoring.metrics.rollups.downsample_and_prune",
            minutes=5,
        )
