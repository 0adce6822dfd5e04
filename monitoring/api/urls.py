"""Routes of the monitoring API under /api/v1/: one router, every resource listed here."""

from rest_framework.routers import SimpleRouter

from monitoring.api import alerts, catalog, maintenance, metrics, rules, slos, suppression

router = SimpleRouter()
router.register("services", catalog.ServiceViewSet, basename="api-service")
router.register("integrations", catalog.IntegrationViewSet, basename="api-integration")
router.register("alerts", alerts.AlertViewSet, basename="api-alert")
router.register("silences", suppression.SilenceViewSet, basename="api-silence")
router.register(
    "inhibition-rules", suppression.InhibitionRuleViewSet, basename="api-inhibition-rule"
)
router.register(
    "maintenance-windows", maintenance.MaintenanceWindowViewSet, basename="api-maintenance-window"
)
router.register("metrics/samples", metrics.MetricSampleViewSet, basename="api-metric-sample")
router.register("metrics/series", metrics.MetricSeriesViewSet, basename="api-metric-series")
router.register("alert-rules", rules.AlertRuleViewSet, basename="api-alert-rule")
router.register("slos", slos.SLOViewSet, basename="api-slo")

urlpatterns = router.urls
