"""Admin for SLOs: changed through ``monitoring.slos.services`` (validated per field, recorded
in the event log, alerts resolved when alerting goes off or the SLO is deleted). Actions:
"Recompute now" (forget remembered days, evaluate) and "Export as OpenSLO YAML"; the changelist
links to the OpenSLO import page.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.forms import BaseForm
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from monitoring.models import ServiceLevelObjective
from monitoring.slos import openslo, services
from monitoring.slos.budget import status_of
from monitoring.slos.windows import time_zones
from tocsin.admin_mixins import TeamListFilter, TeamScopedAdmin, adopt
from tocsin.permissions import Action, can, teams_for

FORM_FIELDS = tuple(name for name in services.FIELDS)


class SLOForm(forms.ModelForm):
    class Meta:
        model = ServiceLevelObjective
        fields = ("service", *FORM_FIELDS)
        help_texts = {
            "service": "Burn-rate alerts are raised on this service; probe indicators count "
            "its checks.",
            "name": "What people read in lists and alerts, e.g. “Checkout availability”.",
            "slug": "Empty: made from the name. OpenSLO's metadata.name.",
            "description": "Why this objective, who agreed to it: shown on the SLO's page.",
            "objective": "Percent of good events (or slices), e.g. 99.9; the error budget is the "
            "rest (0.1 %).",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "time_zone" in self.fields:
            zones = sorted(time_zones())
            self.fields["time_zone"] = forms.ChoiceField(
                choices=[(z, z) for z in zones],
                initial="UTC",
                help_text=ServiceLevelObjective._meta.get_field("time_zone").help_text,
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        slo = ServiceLevelObjective(
            **{k: v for k, v in data.items() if k in FORM_FIELDS or k == "service"}
        )
        for name, message in slo.problems().items():
            field, _, key = name.partition(".")
            target = field if field in self.fields else None
            self.add_error(target, f"{key}: {message}" if key else message)
        return data


@admin.register(ServiceLevelObjective)
class SLOAdmin(TeamScopedAdmin, admin.ModelAdmin):
    form = SLOForm
    team_field = "service__team"
    team_scoped_fields = {"service": "team"}
    list_display = (
        "name",
        "service",
        "sli_kind",
        "objective",
        "window",
        "budget_display",
        "burn_rate_display",
        "alerted_display",
    )
    list_filter = (TeamListFilter, "sli_kind", "window", "budgeting", "alerting")
    list_select_related = ("service", "service__team")
    search_fields = ("name", "slug", "service__name")
    search_help_text = "Search by SLO or service name."
    actions = ("recompute_now", "export_openslo")
    change_list_template = "monitoring/slo_admin_changelist.html"
    fieldsets = (
        (None, {"fields": ("service", "name", "slug", "description")}),
        ("Indicator", {"fields": ("sli_kind", "sli_config")}),
        ("Objective", {"fields": ("objective", "window", "time_zone", "alerting")}),
        (
            "Budgeting",
            {"fields": ("budgeting", "timeslice_target", "timeslice_minutes")},
        ),
    )
    readonly_figures = ("computed_at", "attainment", "budget_remaining", "burn_rate", "alerted")

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return self.fieldsets
        return (*self.fieldsets, ("Last computed", {"fields": self.readonly_figures}))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return () if obj is None else ("service", *self.readonly_figures)

    @admin.display(description="budget left", ordering="budget_remaining")
    def budget_display(self, slo: ServiceLevelObjective) -> str:
        status = status_of(slo.budget_remaining, slo.attainment is not None)
        if slo.budget_remaining is None:
            return "—"
        return format_html(
            '<span class="status status-{}">{} %</span>',
            status,
            f"{100 * slo.budget_remaining:.1f}",
        )

    @admin.display(description="burn rate (1 h)", ordering="burn_rate")
    def burn_rate_display(self, slo: ServiceLevelObjective) -> str:
        return "—" if slo.burn_rate is None else f"{slo.burn_rate:.2f}"

    @admin.display(description="alerting now")
    def alerted_display(self, slo: ServiceLevelObjective) -> str:
        return ", ".join(slo.alerted or []) or "—"

    def save_model(self, request: HttpRequest, obj: Any, form: BaseForm, change: bool) -> None:
        self.ensure_manages(request, obj)
        data = {name: form.cleaned_data[name] for name in FORM_FIELDS if name in form.cleaned_data}
        if not change:
            adopt(
                obj, services.create_slo(form.cleaned_data["service"], actor=request.user, **data)
            )
            return
        changes = {name: data[name] for name in form.changed_data if name in data}
        fresh = ServiceLevelObjective.objects.select_related("service").get(pk=obj.pk)
        services.update_slo(fresh, actor=request.user, **changes)
        adopt(obj, fresh)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self.ensure_manages(request, obj)
        services.delete_slo(obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for slo in queryset.select_related("service"):
            self.delete_model(request, slo)

    @admin.action(description="Recompute now (forget remembered days)")
    def recompute_now(self, request: HttpRequest, queryset: Any) -> None:
        for slo in queryset.select_related("service", "service__team"):
            self.ensure_manages(request, slo)
            services.recompute(slo)
        self.message_user(request, f"{queryset.count()} SLO(s) recomputed.", messages.SUCCESS)

    @admin.action(description="Export as OpenSLO YAML")
    def export_openslo(self, request: HttpRequest, queryset: Any) -> HttpResponse:
        slos = list(queryset.select_related("service"))
        response = HttpResponse(openslo.export(slos), content_type="application/yaml")
        response["Content-Disposition"] = 'attachment; filename="slos.openslo.yaml"'
        return response

    # --- OpenSLO import ----------------------------------------------------------------------

    def get_urls(self) -> list:
        return [
            path(
                "import-openslo/",
                self.admin_site.admin_view(self.import_view),
                name="monitoring_servicelevelobjective_import",
            ),
            *super().get_urls(),
        ]

    def import_view(self, request: HttpRequest) -> Any:
        form = ImportForm(request.POST or None, request.FILES or None, user=request.user)
        errors: dict[str, str] = {}
        if request.method == "POST" and form.is_valid():
            team = form.cleaned_data["team"]
            try:
                saved = openslo.import_documents(
                    form.text(), team, service=form.cleaned_data["service"], actor=request.user
                )
            except openslo.ImportFailed as exc:
                errors = exc.errors
            except services.SLOInvalid as exc:
                errors = exc.fields
            else:
                self.message_user(request, f"{len(saved)} SLO(s) imported.", messages.SUCCESS)
                return _redirect(reverse("admin:monitoring_servicelevelobjective_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Import SLOs from OpenSLO YAML",
            "form": form,
            "errors": sorted(errors.items()),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "monitoring/slo_admin_import.html", context)


def _redirect(url: str) -> Any:
    from django.http import HttpResponseRedirect

    return HttpResponseRedirect(url)


class ImportForm(forms.Form):
    team = forms.ModelChoiceField(queryset=None, help_text="You need the manager role in it.")
    service = forms.ModelChoiceField(
        queryset=None,
        required=False,
        help_text="Import every document into this service; empty: each document's "
        "spec.service (a service slug of the team).",
    )
    yaml_text = forms.CharField(
        label="OpenSLO YAML", widget=forms.Textarea(attrs={"rows": 16}), required=False
    )
    yaml_file = forms.FileField(label="or a file", required=False)

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from monitoring.models import Service

        teams = teams_for(user, Action.MANAGE)
        self.user = user
        self.fields["team"].queryset = teams
        self.fields["service"].queryset = Service.objects.filter(team__in=teams)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        team, service = data.get("team"), data.get("service")
        if team is not None and not can(self.user, Action.MANAGE, team):
            self.add_error("team", "You do not manage this team.")
        if team is not None and service is not None and service.team_id != team.pk:
            self.add_error("service", "a service of the chosen team")
        if not data.get("yaml_text") and not data.get("yaml_file"):
            self.add_error("yaml_text", "paste the YAML or choose a file")
        limit = f"at most {openslo.MAX_BYTES // 1024} KB"
        upload = data.get("yaml_file")
        if upload and upload.size > openslo.MAX_BYTES:
            self.add_error("yaml_file", limit)
        text = data.get("yaml_text") or ""
        if len(text.encode("utf-8", errors="replace")) > openslo.MAX_BYTES:
            self.add_error("yaml_text", limit)
        return data

    def text(self) -> str:
        upload = self.cleaned_data.get("yaml_file")
        if upload:
            return upload.read().decode("utf-8", errors="replace")
        return self.cleaned_data["yaml_text"]
