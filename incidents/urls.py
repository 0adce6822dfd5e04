from django.urls import include, path

urlpatterns = [
    # Before ui_urls: its incidents/<pk>/<action>/ would otherwise claim .../postmortem/.
    path("", include("incidents.postmortem_urls")),
    path("", include("incidents.ui_urls")),
    path("", include("incidents.schedule_urls")),
    path("", include("incidents.notification_urls")),
    path("", include("incidents.report_urls")),
]
