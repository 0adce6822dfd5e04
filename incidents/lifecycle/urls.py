from django.urls import path

from incidents.lifecycle import views
from incidents.notifications import link_views

urlpatterns: list = [
    path("incidents/act/<str:token>/", link_views.action_link, name="incident_action_link"),
    path("incidents/", views.incident_list, name="incidents"),
    path("incidents/table/", views.incident_table, name="incidents_table"),
    path("incidents/bulk/", views.incident_bulk, name="incidents_bulk"),
    path("incidents/<int:pk>/", views.incident_detail, name="incident"),
    path("incidents/<int:pk>/live/", views.incident_live, name="incident_live"),
    path("incidents/<int:pk>/<slug:action>/", views.incident_action, name="incident_action"),
]
