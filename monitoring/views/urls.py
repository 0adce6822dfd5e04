"""Pages of the monitoring app: alerts and the service catalog (included before tocsin's)."""

from django.urls import path

from monitoring.views import (
    alert_page,
    alerts,
    catalog,
    databases,
    grouping_preview,
    maintenance,
    silences,
    slos,
)

urlpatterns = [
    path("alerts/", alerts.alerts, name="alerts"),
    path("alerts/table/", alerts.alerts_table, name="alerts_table"),
    path("alerts/<int:pk>/", alert_page.alert_detail, name="alert"),
    path("alerts/<int:pk>/live/", alert_page.alert_live, name="alert_live"),
    path("alerts/<int:pk>/silence/", alerts.alert_silence, name="alert_silence"),
    path("silences/", silences.silences, name="silences"),
    path("silences/new/", silences.silence_create, name="silence_create"),
    path("silences/preview/", silences.silence_preview, name="silence_preview"),
    path("silences/<int:pk>/expire/", silences.silence_expire, name="silence_expire"),
    path("maintenance/", maintenance.maintenance, name="maintenance"),
    path("maintenance/new/", maintenance.maintenance_create, name="maintenance_create"),
    path("maintenance/<int:pk>/", maintenance.maintenance_window, name="maintenance_window"),
    path("maintenance/<int:pk>/delete/", maintenance.maintenance_delete, name="maintenance_delete"),
    path("slos/", slos.slo_list, name="slos"),
    path("slos/rows/", slos.slo_rows, name="slo_rows"),
    path("slos/<int:pk>/", slos.slo_detail, name="slo"),
    path("slos/<int:pk>/figures/", slos.slo_figures, name="slo_figures"),
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
    path(
        "services/<slug:team_slug>/<slug:service_slug>/integrations/<int:pk>/test/",
        catalog.integration_test,
        name="integration_test",
    ),
    path(
        "services/<slug:team_slug>/<slug:service_slug>/grouping-preview/",
        grouping_preview.grouping_preview,
        name="grouping_preview",
    ),
]
