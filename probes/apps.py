from django.apps import AppConfig


class ProbesConfig(AppConfig):
    name = "probes"

    def ready(self) -> None:
        from probes import dashboard
        from probes.checks.availability import register_source
        from tocsin.scheduling import DueWork, register, register_due_work

        # Monitoring's SLOs, SLA reports and status pages read checks' history through this.
        register_source()
        dashboard.register_tiles()  # the dashboard's check and heartbeat tiles

        # Heartbeats past their deadline (or a run past its maximum time) are found by the
        # due-work loop of `manage.py worker` within its poll interval, not at a minute tick.
        register_due_work(
            DueWork(
                name="heartbeats",
                func="probes.heartbeats.evaluation.evaluate_due",
                run="probes.heartbeats.evaluation.run_due",
                next_due="probes.heartbeats.evaluation.next_due",
            )
        )
        # The rows are the truth; this catches up whatever the loop missed while no worker ran.
        register(
            "probes.heartbeats.evaluate_due", "probes.heartbeats.evaluation.evaluate_due", minutes=1
        )
        register(
            "probes.heartbeats.prune_pings", "probes.heartbeats.services.prune_pings", minutes=60
        )
        # Checks: due slots are claimed by the due-work loop as soon as they are due (at this
        # worker's TOCSIN_PROBE_LOCATION); the schedule catches up what no loop ran.
        register_due_work(
            DueWork(
                name="checks",
                func="probes.checks.scheduler.run_all_due",
                run="probes.checks.scheduler.run_due",
                next_due="probes.checks.scheduler.next_due",
                drain="probes.checks.scheduler.drain",
            )
        )
        register("probes.checks.run_due", "probes.checks.scheduler.run_all_due", minutes=1)
        register("probes.checks.rollup", "probes.checks.rollups.rollup", minutes=1)
        register("probes.checks.prune", "probes.checks.rollups.prune", minutes=60)
