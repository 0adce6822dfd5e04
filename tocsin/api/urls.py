"""Routes of /api/v1/, spelled out: the nesting under teams reads better than router magic, and
``<int:…>`` converters give the schema typed path parameters and answer 404 to ``/teams/abc/``."""

from django.urls import path

from tocsin.api import schema, views

team_list = views.TeamViewSet.as_view({"get": "list", "post": "create"})
team_detail = views.TeamViewSet.as_view({"get": "retrieve", "patch": "partial_update"})
member_list = views.MembershipViewSet.as_view({"get": "list", "post": "create"})
member_detail = views.MembershipViewSet.as_view(
    {"get": "retrieve", "patch": "partial_update", "delete": "destroy"}
)
event_list = views.EventViewSet.as_view({"get": "list"})
event_detail = views.EventViewSet.as_view({"get": "retrieve"})
token_list = views.ApiTokenViewSet.as_view({"get": "list", "post": "create"})
token_detail = views.ApiTokenViewSet.as_view({"get": "retrieve", "delete": "destroy"})

urlpatterns = [
    path("me/", views.MeView.as_view(), name="api-me"),
    path("teams/", team_list, name="api-team-list"),
    path("teams/<int:pk>/", team_detail, name="api-team-detail"),
    path("teams/<int:team_id>/members/", member_list, name="api-member-list"),
    path("teams/<int:team_id>/members/<int:pk>/", member_detail, name="api-member-detail"),
    path(
        "teams/<int:team_id>/test-event/", views.TestEventView.as_view(), name="api-team-test-event"
    ),
    path("events/", event_list, name="api-event-list"),
    path("events/<int:pk>/", event_detail, name="api-event-detail"),
    path("tokens/", token_list, name="api-token-list"),
    path("tokens/<int:pk>/", token_detail, name="api-token-detail"),
    path("schema/", schema.SchemaView.as_view(), name="api-schema"),
    path("docs/", schema.SwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", schema.RedocView.as_view(url_name="api-schema"), name="api-redoc"),
]
