from monitoring.api import alerts, metrics, suppression

urlpatterns = [*alerts.router.urls, *suppression.router.urls, *metrics.router.urls]
