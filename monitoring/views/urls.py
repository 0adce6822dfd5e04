"""Pages of the monitoring app: alerts and the service catalog (included before tocsin's)."""

from django.urls import path

from monitoring.views import alerts, catalog, databases

urlpatterns = [
    path("alerts/", alerts.alerts, name="alerts"),
    path("alerts/table/", alerts.alerts_table, name="alerts_table"),
    path("alerts/<int:pk>/silence/", alerts.alert_silence, name="alert_silence"),
    path("databases/", databases.databases, name="databases"),
    path("databases/<int:pk>/", databases.database, name="database"),
    path("services/", catalog.services_page, name="services"),
    path("services/new/", catalog.service_create, name="service_create"),
    path("services/<slug:team_slug>/<slug:service_slug>/", catalog.service_detail, name="service"),
    path(
        "services/<slug:team_slug>/<slug:service_slug>/edit/",
        catalog.service_update,
        name="service_update",
    ),
    path(
        "services/<slug:team_slug>/<slug:service_slug>/integrations/",
        catalog.integration_create,
        name="integration_create",
    ),
    path(
        "services/<slug:team_slug>/<slug:service_slug>/integrations/<int:pk>/rotate/",
        catalog.integration_rotate,
        name="integration_rotate",
    ),
    path(
        "services/<slug:team_slug>/<slug:service_slug>/integrations/<int:pk>/revoke/",
        catalog.integration_revoke,
        name="integration_revoke",
    ),
]
