from django.urls import path

from incidents import link_views

urlpatterns: list = [
    path("incidents/act/<str:token>/", link_views.action_link, name="incident_action_link"),
]
