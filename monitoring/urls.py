from django.urls import include, path

from monitoring import exposition

urlpatterns = [
    path("ingest/", include("monitoring.ingest_urls")),
    path("metrics", exposition.metrics_view, name="metrics"),
    path("", include("monitoring.ui_urls")),
]
