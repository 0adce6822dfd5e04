"""The incidents app's REST endpoints, one router per domain (mounted under /api/v1/)."""

from django.urls import path

from incidents.escalation import api as escalation_api
from incidents.lifecycle import api as lifecycle_api
from incidents.notifications import api as notifications_api
from incidents.oncall import api as oncall_api
from incidents.postmortems import api as postmortems_api
from incidents.reports import sla_api
from incidents.slas import api as slas_api
from incidents.statuspages import api as statuspages_api

urlpatterns = [
    *lifecycle_api.router.urls,
    *escalation_api.router.urls,
    *oncall_api.router.urls,
    *notifications_api.router.urls,
    *postmortems_api.urlpatterns,
    *slas_api.router.urls,
    *statuspages_api.router.urls,
    path("reports/incidents/", slas_api.IncidentReportView.as_view(), name="api-report-incidents"),
    path("reports/sla/<int:team_id>/", sla_api.SlaReportView.as_view(), name="api-report-sla"),
]
