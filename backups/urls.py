from django.urls import path

from backups import pages

urlpatterns = [
    path("backups/", pages.backups, name="backups"),
    path("backups/plans/<int:pk>/", pages.plan, name="backup_plan"),
    path("backups/plans/<int:pk>/progress/", pages.progress, name="backup_plan_progress"),
    path("backups/plans/<int:pk>/<str:kind>/", pages.start, name="backup_plan_start"),
]
