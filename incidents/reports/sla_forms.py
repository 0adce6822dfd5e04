"""The SLA report's parameters (month, time zone, target, service), shared by the page, the
print view, the CSV and the API. A value that does not parse, a month in the future or a
service of another team is a form error (400), never another month's or team's figures."""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache
from typing import Any
from zoneinfo import available_timezones

from django import forms
from django.utils import timezone

from incidents.reports import sla
from monitoring.models import Service
from tocsin.api.lookups import MAX_ID
from tocsin.models import Team

MONTH = re.compile(r"^([0-9]{4})-([0-9]{2})$")
FIRST_YEAR = 2000


@lru_cache(maxsize=1)
def time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


class SlaReportForm(forms.Form):
    month = forms.CharField(required=False, help_text="YYYY-MM; default: last month.")
    tz = forms.CharField(
        required=False, max_length=64, help_text="IANA time zone the month is counted in."
    )
    target = forms.DecimalField(
        required=False,
        min_value=0,
        max_value=100,
        max_digits=7,
        decimal_places=4,
        help_text="Target availability in percent; default: the service's SLO or 99.9.",
    )
    service = forms.IntegerField(required=False, min_value=1, max_value=MAX_ID)

    def __init__(self, data: Any, *, team: Team, today: date | None = None) -> None:
        super().__init__(data)
        self.team = team
        self.today = today or timezone.localdate()

    def clean_month(self) -> date:
        value = (self.cleaned_data.get("month") or "").strip()
        if not value:
            return sla.last_month(self.today)
        found = MONTH.match(value)
        if not found or not 1 <= int(found.group(2)) <= 12:
            raise forms.ValidationError("a month as YYYY-MM, e.g. 2026-03")
        if int(found.group(1)) < FIRST_YEAR:
            raise forms.ValidationError(f"a month from {FIRST_YEAR} on")
        month = date(int(found.group(1)), int(found.group(2)), 1)
        if month > self.today.replace(day=1):
            raise forms.ValidationError("this month has not begun")
        return month

    def clean_tz(self) -> str:
        value = (self.cleaned_data.get("tz") or "").strip()
        if not value:
            return sla.default_time_zone()
        if value not in time_zones():
            raise forms.ValidationError("an IANA time zone name, e.g. Europe/Berlin")
        return value

    def clean_service(self) -> Service | None:
        pk = self.cleaned_data.get("service")
        if pk is None:
            return None
        service = Service.objects.filter(team=self.team, pk=pk).first()
        if service is None:
            raise forms.ValidationError("no service with this id in this team")
        return service

    def params(self) -> dict[str, str]:
        """The cleaned values as query parameters (for links to the CSV and print view)."""
        data = self.cleaned_data
        out = {"month": data["month"].strftime("%Y-%m"), "tz": data["tz"]}
        if data.get("target") is not None:
            out["target"] = f"{data['target'].normalize():f}"
        if data.get("service") is not None:
            out["service"] = str(data["service"].pk)
        return out


def build_from(form: SlaReportForm, now: Any = None) -> sla.SlaReport:
    """The report for a valid form's parameters."""
    data = form.cleaned_data
    service = data.get("service")
    services = Service.objects.filter(pk=service.pk) if service is not None else None
    target = data.get("target")
    return sla.build(
        form.team,
        data["month"],
        time_zone=data["tz"],
        target=float(target) if target is not None else None,
        services=services,
        now=now,
    )
