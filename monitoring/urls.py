from django.urls import include, path

from monitoring import exposition

urlpatterns = [
    path("ingest/", include("monitoring.ingest.urls")),
    path("metrics", exposition.metrics_view, name="metrics"),
    path("", include("monitoring.views.urls")),
]
