"""Pages of the monitoring app: alerts and the service catalog (included before tocsin's)."""

from django.urls import path

from monitoring import views

urlpatterns = [
    path("alerts/", views.alerts, name="alerts"),
    path("alerts/table/", views.alerts_table, name="alerts_table"),
    path("alerts/<int:pk>/silence/", views.alert_silence, name="alert_silence"),
    path("services/", views.services_page, name="services"),
    path("services/new/", views.service_create, name="service_create"),
    path("services/<slug:team_slug>/<slug:service_slug>/", views.service_detail, name="service"),
    path(
        "services/<slug:team_slug>/<slug:service_slug>/edit/",
        views.service_update,
        name="service_update",
    ),
    path(
        "services/<slug:team_slug>/<slug:service_slug>/integrations/",
        views.integration_create,
        name="integration_create",
    ),
    path(
        "services/<slug:team_slug>/<slug:service_slug>/integrations/<int:pk>/rotate/",
        views.integration_rotate,
        name="integration_rotate",
    ),
    path(
        "services/<slug:team_slug>/<slug:service_slug>/integrations/<int:pk>/revoke/",
        views.integration_revoke,
        name="integration_revoke",
    ),
]
