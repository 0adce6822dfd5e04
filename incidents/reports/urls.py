from django.urls import path

from incidents.reports import sla_views
from incidents.reports import views as report_views

urlpatterns: list = [
    path("reports/", report_views.report_page, name="reports"),
    path("reports/incidents.csv", report_views.report_csv, name="reports_csv"),
    path("reports/sla/", sla_views.sla_index, name="sla_reports"),
    path("reports/sla/<slug:slug>/", sla_views.sla_page, name="sla_report"),
    path("reports/sla/<slug:slug>/print/", sla_views.sla_print, name="sla_report_print"),
    path("reports/sla/<slug:slug>/sla.csv", sla_views.sla_csv, name="sla_report_csv"),
]
