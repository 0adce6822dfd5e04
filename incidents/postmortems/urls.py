"""Postmortem pages (included at the site root, before the incident pages' catch-all actions)."""

from django.urls import path

from incidents.postmortems import views

urlpatterns = [
    path("postmortems/", views.postmortem_list, name="postmortems"),
    path("incidents/<int:pk>/postmortem/", views.postmortem_page, name="postmortem"),
    path("incidents/<int:pk>/postmortem.md", views.postmortem_markdown, name="postmortem_md"),
    path("incidents/<int:pk>/postmortem/edit/", views.postmortem_edit, name="postmortem_edit"),
    path(
        "incidents/<int:pk>/postmortem/status/", views.postmortem_status, name="postmortem_status"
    ),
    path("incidents/<int:pk>/postmortem/items/", views.postmortem_items, name="postmortem_items"),
    path(
        "incidents/<int:pk>/postmortem/items/add/",
        views.action_item_add,
        name="postmortem_item_add",
    ),
    path(
        "incidents/<int:pk>/postmortem/items/<int:item_id>/<slug:action>/",
        views.action_item_action,
        name="postmortem_item_action",
    ),
]
