from django.urls import path

from incidents.api import incidents, notifications, postmortems, schedules, slas

urlpatterns = [
    *incidents.router.urls,
    *schedules.router.urls,
    *notifications.router.urls,
    *postmortems.urlpatterns,
    *slas.router.urls,
    path("reports/incidents/", slas.IncidentReportView.as_view(), name="api-report-incidents"),
]
