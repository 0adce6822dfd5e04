from incidents.api import incidents, notifications, schedules

urlpatterns = [*incidents.router.urls, *schedules.router.urls, *notifications.router.urls]
