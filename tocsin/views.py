from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render


@login_required
def dashboard(request):
    return render(request, "tocsin/dashboard.html")


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"error": {"code": "not_found", "message": "no such endpoint", "fields": {}}},
            status=404,
        )
    return HttpResponse("Not found", status=404)


def server_error(request):
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"error": {"code": "server_error", "message": "internal error", "fields": {}}},
            status=500,
        )
    return HttpResponse("Server error", status=500)
