"""The probes app's REST endpoints (mounted under /api/v1/), one router for its areas."""

from rest_framework.routers import SimpleRouter

from probes.checks import api as checks_api
from probes.checks import rollups_api
from probes.heartbeats import api as heartbeats_api

router = SimpleRouter()
router.register("checks", checks_api.CheckViewSet, basename="api-check")
router.register("check-results", checks_api.ResultViewSet, basename="api-check-result")
router.register("check-rollups", rollups_api.RollupViewSet, basename="api-check-rollup")
router.register("heartbeats", heartbeats_api.HeartbeatViewSet, basename="api-heartbeat")
router.register("heartbeat-pings", heartbeats_api.PingViewSet, basename="api-heartbeat-ping")

urlpatterns = router.urls
