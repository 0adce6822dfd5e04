"""The checks' pages (login required), under /probes/ beside the heartbeats' pages."""

from django.urls import path

from probes.checks import pages

urlpatterns = [
    path("probes/", pages.check_list, name="probes"),
    path("probes/grid/", pages.check_grid, name="checks_grid"),
    path("probes/checks/<int:pk>/", pages.check_detail, name="check"),
    *[
        path(
            f"probes/checks/<int:pk>/{operation}/",
            pages.check_respond,
            {"operation": operation},
            name=f"check_{operation}",
        )
        for operation in pages.RESPONSES
    ],
    path("probes/checks/<int:pk>/test/", pages.check_test, name="check_test"),
]
