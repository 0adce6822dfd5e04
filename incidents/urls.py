from django.urls import include, path

urlpatterns = [
    path("", include("incidents.ui_urls")),
    path("", include("incidents.schedule_urls")),
    path("", include("incidents.notification_urls")),
]
