from django.urls import include, path

urlpatterns = [
    # Before ui_urls: its incidents/<pk>/<action>/ would otherwise claim .../postmortem/.
    path("", include("incidents.statuspages.urls")),  # before lifecycle: .../public-update/
    path("", include("incidents.postmortems.urls")),
    path("", include("incidents.lifecycle.urls")),
    path("", include("incidents.oncall.urls")),
    path("", include("incidents.notifications.urls")),
    path("", include("incidents.reports.urls")),
]
