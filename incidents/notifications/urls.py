"""/account/notifications/: each user's own contact methods and notification rules."""

from django.urls import path

from incidents.notifications import views

urlpatterns = [
    path("account/notifications/", views.settings_page, name="notification_settings"),
    path(
        "account/notifications/methods/",
        views.method_add,
        name="notification_method_add",
    ),
    path(
        "account/notifications/methods/<int:pk>/delete/",
        views.method_delete,
        name="notification_method_delete",
    ),
    path(
        "account/notifications/methods/<int:pk>/test/",
        views.method_test,
        name="notification_method_test",
    ),
    path("account/notifications/rules/", views.rule_add, name="notification_rule_add"),
    path(
        "account/notifications/rules/<int:pk>/delete/",
        views.rule_delete,
        name="notification_rule_delete",
    ),
    path(
        "account/notifications/rules/<int:pk>/resolve-notice/",
        views.rule_resolve_notice,
        name="notification_rule_resolve_notice",
    ),
]
