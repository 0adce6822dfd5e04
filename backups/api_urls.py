"""The backups app's REST endpoints (mounted under /api/v1/)."""

from rest_framework.routers import SimpleRouter

from backups import api

router = SimpleRouter()
router.register("backup-plans", api.BackupPlanViewSet, basename="api-backup-plan")
router.register("backup-runs", api.BackupRunViewSet, basename="api-backup-run")

urlpatterns = router.urls
