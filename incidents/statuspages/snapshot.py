"""Everything a status page shows, computed once per request in a constant number of queries:
the page's components with their statuses and uptime, its unresolved public incidents and its
maintenance. The HTML page, the JSON API, the feeds and the badges all read this.

A component's status is its manual status while one is in force; otherwise the worst of:
- open incidents of its service, by priority (P1 major outage, P2 partial, P3 degraded);
- the state of its probe check (down: major outage; degraded: degraded performance);
- unresolved public incidents naming it, by impact (critical major, major partial, minor
  degraded);
- a maintenance window of its service in progress (under maintenance).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.core.cache import cache
from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from incidents.lifecycle.models import OPEN_STATUSES, Incident
from incidents.statuspages import maintenance, uptime
from incidents.statuspages.models import (
    SEVERITY,
    Component,
    ComponentGroup,
    ComponentStatus,
    PublicImpact,
    PublicIncident,
    PublicIncidentStatus,
    PublicUpdate,
    StatusPage,
)
from monitoring import availability

S = ComponentStatus
FROM_PRIORITY = {"P1": S.MAJOR, "P2": S.PARTIAL, "P3": S.DEGRADED}
FROM_PROBE = {"down": S.MAJOR, "degraded": S.DEGRADED}
FROM_IMPACT = {
    PublicImpact.CRITICAL: S.MAJOR,
    PublicImpact.MAJOR: S.PARTIAL,
    PublicImpact.MINOR: S.DEGRADED,
}
# The page's overall status, as Statuspage words it: (indicator, description).
OVERALL = {
    S.OPERATIONAL: ("none", "All Systems Operational"),
    S.DEGRADED: ("minor", "Minor Service Outage"),
    S.MAINTENANCE: ("none", "Service Under Maintenance"),
    S.PARTIAL: ("major", "Partial System Outage"),
    S.MAJOR: ("critical", "Major Service Outage"),
}
IMPACT_INDICATOR = {
    PublicImpact.NONE: "none",
    PublicImpact.MINOR: "minor",
    PublicImpact.MAJOR: "major",
    PublicImpact.CRITICAL: "critical",
}
INDICATOR_RANK = {"none": 0, "minor": 1, "major": 2, "critical": 3}
UPTIME_CACHE_SECONDS = 300


def worst(statuses: list[str]) -> str:
    return max(statuses, key=lambda s: SEVERITY[S(s)], default=S.OPERATIONAL)


@dataclass
class ComponentView:
    component: Component
    status: str
    uptime: uptime.Uptime

    @property
    def id(self) -> int:
        return self.component.pk

    @property
    def name(self) -> str:
        return self.component.name

    @property
    def status_label(self) -> str:
        return S(self.status).label


@dataclass
class GroupView:
    group: ComponentGroup | None
    components: list[ComponentView]

    @property
    def status(self) -> str:
        return worst([c.status for c in self.components])

    @property
    def status_label(self) -> str:
        return S(self.status).label


@dataclass
class Snapshot:
    page: StatusPage
    now: datetime
    components: list[ComponentView]
    groups: list[GroupView]  # in page order; ungrouped components in a group of None
    incidents: list[PublicIncident]  # unresolved, newest first, updates prefetched
    maintenances: list[maintenance.Occurrence]
    start: datetime = field(default_factory=timezone.now)

    @property
    def status(self) -> str:
        return worst([c.status for c in self.components])

    @property
    def indicator(self) -> str:
        """Statuspage's none/minor/major/critical: from components and open incidents."""
        found = OVERALL[S(self.status)][0]
        for incident in self.incidents:
            candidate = IMPACT_INDICATOR[PublicImpact(incident.impact)]
            if INDICATOR_RANK[candidate] > INDICATOR_RANK[found]:
                found = candidate
        return found

    @property
    def description(self) -> str:
        status = S(self.status)
        if status == S.OPERATIONAL and self.indicator != "none":
            return {"minor": "Minor Service Outage", "major": "Partial System Outage"}.get(
                self.indicator, "Major Service Outage"
            )
        return OVERALL[status][1]

    @property
    def upcoming(self) -> list[maintenance.Occurrence]:
        return [m for m in self.maintenances if m.status != maintenance.COMPLETED]

    @property
    def updated_at(self) -> datetime:
        moments = [self.page.updated_at]
        moments += [c.component.updated_at for c in self.components]
        moments += [i.updated_at for i in self.incidents]
        return max(moments)


def updates_prefetch() -> Prefetch:
    return Prefetch("updates", queryset=PublicUpdate.objects.order_by("-created_at", "-id"))


def public_incidents(page: StatusPage) -> QuerySet[PublicIncident]:
    """A page's public incidents with their updates and components (three queries in all)."""
    return (
        PublicIncident.objects.filter(page=page)
        .prefetch_related(updates_prefetch(), "components")
        .order_by("-started_at", "-id")
    )


def page_components(page: StatusPage) -> list[Component]:
    return list(
        Component.objects.filter(page=page)
        .select_related("service")
        .only(
            "id",
            "page_id",
            "group_id",
            "name",
            "description",
            "position",
            "service_id",
            "service__created_at",
            "source_kind",
            "target_id",
            "manual_status",
            "manual_until",
            "show_uptime",
            "created_at",
            "updated_at",
        )
        .order_by("position", "id")
    )


def build(page: StatusPage, now: datetime | None = None, *, with_uptime: bool = True) -> Snapshot:
    now = now or timezone.now()
    groups = list(ComponentGroup.objects.filter(page=page).order_by("position", "id"))
    components = page_components(page)
    incidents = list(public_incidents(page).exclude(status=PublicIncidentStatus.RESOLVED))
    for incident in incidents:
        incident.page = page  # their links need it: no query per incident
    service_ids = {c.service_id for c in components if c.service_id}
    page_services = set(page.services.values_list("pk", flat=True))

    # Statuses from open internal incidents (one query), probes (the source's), maintenance.
    worst_priority: dict[int, str] = {}
    if service_ids:
        rows = Incident.objects.filter(
            service_id__in=service_ids, status__in=OPEN_STATUSES
        ).values_list("service_id", "priority")
        for service_id, priority in rows.order_by():
            if priority in FROM_PRIORITY and (
                service_id not in worst_priority or priority < worst_priority[service_id]
            ):
                worst_priority[service_id] = priority
    by_kind: dict[str, set[int]] = defaultdict(set)
    for c in components:
        if c.source_kind and c.target_id is not None:
            by_kind[c.source_kind].add(c.target_id)
    states: dict[tuple[str, int], str] = {}
    for kind, ids in by_kind.items():
        source = availability.source(kind)
        if source is not None:
            states.update({(kind, tid): s for tid, s in source.states(ids).items()})
    by_service: dict[int, list[Component]] = defaultdict(list)
    for c in components:
        if c.service_id:
            by_service[c.service_id].append(c)
    windows = maintenance.windows_for(service_ids | page_services, now)
    occurrences = maintenance.for_page(page, windows, by_service, now)
    in_maintenance = {o.service_id for o in occurrences if o.is_active}
    impacts: dict[int, list[str]] = defaultdict(list)
    for incident in incidents:
        status = FROM_IMPACT.get(PublicImpact(incident.impact))
        if status is not None:
            for c in incident.components.all():
                impacts[c.pk].append(status)

    start, _end = uptime.window(now)
    uptimes = _uptimes(page, components, now) if with_uptime else {}

    blank = uptime.empty(start)  # one shared row of grey days for components without data
    views = []
    for c in components:
        status = c.manual_at(now)
        if not status:
            found = [S.OPERATIONAL]
            if c.service_id in worst_priority:
                found.append(FROM_PRIORITY[worst_priority[c.service_id]])
            probe_state = states.get((c.source_kind, c.target_id))
            if probe_state in FROM_PROBE:
                found.append(FROM_PROBE[probe_state])
            found += impacts.get(c.pk, [])
            if c.service_id in in_maintenance:
                found.append(S.MAINTENANCE)
            status = worst(found)
        views.append(ComponentView(c, status, uptimes.get(c.pk) or blank))
    by_group: dict[int | None, list[ComponentView]] = defaultdict(list)
    for view in views:
        by_group[view.component.group_id].append(view)
    group_views = [GroupView(None, by_group[None])] if by_group.get(None) else []
    group_views += [GroupView(g, by_group.get(g.pk, [])) for g in groups]
    return Snapshot(page, now, views, group_views, incidents, occurrences, start)


def _uptimes(
    page: StatusPage, components: list[Component], now: datetime, *, refresh: bool = False
) -> dict[int, uptime.Uptime]:
    """Each component's 90 days, cached for ``UPTIME_CACHE_SECONDS``: past days do not change,
    and today's bar may lag that much (statuses never do: they are computed every time). The
    key names the page, the UTC day and what each component follows, so a component mapped to
    another check or service misses the cache at once."""
    start, end = uptime.window(now)
    follows = [(c.pk, c.service_id, c.source_kind, c.target_id, c.show_uptime) for c in components]
    digest = hashlib.sha256(repr((page.pk, page.created_at, follows)).encode()).hexdigest()
    key = f"statuspage-uptime:{page.pk}:{start:%Y%m%d}:{digest[:32]}"
    cached = None if refresh else cache.get(key)
    if cached is not None:
        return {pk: uptime.Uptime(*values) for pk, values in cached.items()}
    by_kind: dict[str, set[int]] = defaultdict(set)
    for c in components:
        if c.source_kind and c.target_id is not None and c.show_uptime:
            by_kind[c.source_kind].add(c.target_id)
    probe_bars: dict[tuple[str, int], uptime.Uptime] = {}
    for kind, ids in by_kind.items():  # one call per kind of source
        for tid, bars in uptime.probe_uptime(kind, ids, start, end).items():
            probe_bars[(kind, tid)] = bars
    without_probe = {  # and one query for the services' incidents
        c.service_id: c.service.created_at
        for c in components
        if c.service_id and not c.source_kind and c.show_uptime
    }
    service_bars = uptime.incident_uptime(without_probe, start, end, now)
    found = {}
    for c in components:
        if not c.show_uptime:
            continue
        bars = probe_bars.get((c.source_kind, c.target_id)) or service_bars.get(c.service_id)
        if bars is not None:
            found[c.pk] = bars
    cache.set(
        key,
        {pk: (u.bars, u.good, u.total) for pk, u in found.items()},
        UPTIME_CACHE_SECONDS,
    )
    return found


def warm_uptimes(now: datetime | None = None) -> int:
    """Recompute the uptime of every published page before its cache entry expires (run every
    few minutes), so that no visitor pays for 90 days of every component. Returns the pages."""
    now = now or timezone.now()
    pages = list(StatusPage.objects.filter(published=True).defer("logo"))
    for page in pages:
        _uptimes(page, page_components(page), now, refresh=True)
    return len(pages)
