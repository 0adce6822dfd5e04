from django.urls import path

from tocsin import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
]
