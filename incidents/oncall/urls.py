"""On-call schedule pages and calendar feeds (included at the site root)."""

from django.urls import path

from incidents.oncall import ical, views

urlpatterns = [
    path("schedules/", views.schedule_list, name="schedules"),
    path("schedules/<int:pk>/", views.schedule_detail, name="schedule"),
    path("schedules/<int:pk>/overrides/", views.override_add, name="schedule_override_add"),
    path(
        "schedules/<int:pk>/overrides/<int:override_id>/delete/",
        views.override_delete,
        name="schedule_override_delete",
    ),
    path("schedules/<int:pk>/swaps/", views.swap_add, name="schedule_swap_add"),
    path(
        "schedules/<int:pk>/swaps/<int:swap_id>/accept/",
        views.swap_accept,
        name="schedule_swap_accept",
    ),
    path(
        "schedules/<int:pk>/swaps/<int:swap_id>/decline/",
        views.swap_decline,
        name="schedule_swap_decline",
    ),
    path(
        "schedules/<int:pk>/swaps/<int:swap_id>/cancel/",
        views.swap_cancel,
        name="schedule_swap_cancel",
    ),
    path("schedules/<int:pk>/ical/<str:token>.ics", ical.schedule_ical, name="schedule_ical"),
    path("oncall/<str:token>.ics", ical.user_ical, name="user_ical"),
]
