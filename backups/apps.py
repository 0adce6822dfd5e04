from django.apps import AppConfig


class BackupsConfig(AppConfig):
    name = "backups"

    def ready(self) -> None:
        from backups import dashboard
        from tocsin.scheduling import DueWork, register, register_due_work

        dashboard.register_tiles()  # the dashboard's backups tile

        # Plans whose cron time has come are queued by the due-work loop of `manage.py worker`
        # at that time; the runs themselves are django-q2 tasks (they can take hours).
        register_due_work(
            DueWork(
                name="backups",
                func="backups.schedule.run_all_due",
                run="backups.schedule.run_due",
                next_due="backups.schedule.next_due",
            )
        )
        # The rows are the truth: catch up what no loop ran, fail runs whose worker died.
        register("backups.run_due", "backups.schedule.run_all_due", minutes=1)
        # Chunks no snapshot names any more (forgotten by retention, left by dead runs).
        register("backups.prune", "backups.schedule.prune_all", minutes=360)
        # A last good backup grows old with time, not with a run.
        register("backups.check_alerts", "backups.alerts.check_all", minutes=5)
