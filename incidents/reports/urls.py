from django.urls import path

from incidents.reports import views as report_views

urlpatterns: list = [
    path("reports/", report_views.report_page, name="reports"),
    path("reports/incidents.csv", report_views.report_csv, name="reports_csv"),
]
