"""A service's paging as its page shows it (``monitoring.service_setup``, registered in
``incidents.apps``): the grouping rule, the escalation policy and who its first step would page
right now, resolved through the on-call schedules as the escalation engine does."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from incidents.lifecycle.groups import preview, rule_label
from incidents.models import (
    Delivery,
    DeliveryStatus,
    EscalationPolicy,
    GroupingMode,
    IncidentAlert,
    ServiceIncidentSettings,
)
from incidents.oncall.rotations import on_call_users
from monitoring.service_setup import TEST_LABEL, GroupingPreview, Pagee, ServicePaging
from tocsin.admin_return import with_next
from tocsin.permissions import Action, members_who_may


def grouping_sentence(settings: ServiceIncidentSettings) -> str:
    if settings.grouping_mode == GroupingMode.LABELS and settings.group_labels:
        names = ", ".join(sorted(settings.group_labels))
        return f"Alerts with the same values of the labels {names} join one open incident."
    if settings.grouping_mode == GroupingMode.TIME_WINDOW:
        return (
            f"Every alert within {settings.window_minutes} minutes of an open incident's start "
            "joins it."
        )
    return (
        "Each distinct alert (same fingerprint: the sender's, or one computed from all its "
        "labels) opens its own incident; re-sends of it join that incident."
    )


def settings_url(service: Any, settings: ServiceIncidentSettings) -> str:
    if settings.pk:
        return reverse("admin:incidents_serviceincidentsettings_change", args=[settings.pk])
    return reverse("admin:incidents_serviceincidentsettings_add") + f"?service={service.pk}"


def first_step_targets(team_id: int, step: Any, now: Any = None) -> list[Any]:
    """Who ``step`` (an EscalationStep) pages at ``now``, in order, as the engine resolves it:
    its users, whoever is on call in its schedule, and the team's responders if asked."""
    now = now or timezone.now()
    ids: list[int] = list(step.user_ids or [])
    if step.schedule_id and step.schedule is not None:
        ids.extend(u.pk for u in on_call_users(step.schedule, now))
    if step.notify_team:
        ids.extend(members_who_may(Action.RESPOND, team_id).values_list("pk", flat=True))
    ordered = list(dict.fromkeys(ids))
    User = get_user_model()
    users = User.objects.in_bulk(ordered)
    return [users[i] for i in ordered if i in users and users[i].is_active]


def _pagee(user: Any, rules: int) -> Pagee:
    name = user.get_full_name() or user.get_username()
    if rules:
        return Pagee(name, True, f"{rules} notification rule(s)")
    if user.email:
        return Pagee(name, True, "account e-mail (no notification rules)")
    return Pagee(name, False, "nothing: no e-mail and no notification rule")


def _step_text(step: Any, people: list[Any]) -> str:
    parts = [u.get_username() for u in people] if step.user_ids else []
    if step.schedule_id and step.schedule is not None:
        parts.append(f"on call in “{step.schedule.name}”")
    if step.notify_team:
        parts.append("the team's responders")
    whom = ", ".join(parts) or "nobody"
    return f"after {step.delay_minutes} minute(s): {whom}"


def describe_service_paging(service: Any) -> ServicePaging:
    settings = ServiceIncidentSettings.for_service(service)
    policy = settings.escalation_policy
    pagees: list[Pagee] = []
    first_step = ""
    if policy is not None:
        step = policy.steps.select_related("schedule").order_by("position", "id").first()
        if step is not None:
            people = first_step_targets(service.team_id, step)
            rule_counts = dict(
                get_user_model()
                .objects.filter(pk__in=[u.pk for u in people])
                .annotate(n=Count("notification_rules"))
                .values_list("pk", "n")
            )
            pagees = [_pagee(u, rule_counts.get(u.pk, 0)) for u in people]
            first_step = _step_text(step, [u for u in people if u.pk in (step.user_ids or [])])
        else:
            first_step = "the policy has no steps"
    deliveries = Delivery.objects.filter(incident__service=service, event_kind="page")
    test_link = (
        IncidentAlert.objects.filter(
            alert__service=service, **{f"alert__labels__{TEST_LABEL}": "true"}
        )
        .select_related("incident")
        .order_by("-alert_id")
        .first()
    )
    # The admin forms the checklist links to come back to the service page after "Save".
    back = reverse("service", args=[service.team.slug, service.slug])
    return ServicePaging(
        grouping_rule=rule_label(settings),
        grouping_help=grouping_sentence(settings),
        settings_url=with_next(settings_url(service, settings), back),
        settings_saved=settings.pk is not None,
        policy_name=policy.name if policy is not None else "",
        policy_url=with_next(
            reverse("admin:incidents_escalationpolicy_change", args=[policy.pk]), back
        )
        if policy is not None
        else "",
        new_policy_url=with_next(
            reverse("admin:incidents_escalationpolicy_add") + f"?team={service.team_id}", back
        ),
        team_policies=EscalationPolicy.objects.filter(team_id=service.team_id).count(),
        first_step=first_step,
        pagees=pagees,
        contact_url=reverse("notification_settings"),
        page_delivered=deliveries.filter(status=DeliveryStatus.SENT).exists(),
        page_pending=deliveries.filter(
            status__in=[DeliveryStatus.PENDING, DeliveryStatus.SENDING]
        ).exists(),
        last_test_incident_url=test_link.incident.get_absolute_url() if test_link else "",
    )


def grouping_preview(service: Any, item: Any) -> GroupingPreview:
    """``incidents.lifecycle.groups.preview`` in the shape the service page shows."""
    found = preview(service, item)
    incident = found["incident"]
    return GroupingPreview(
        rule=found["rule"],
        group_key=found["group_key"],
        why=found["why"],
        incident_id=incident.pk if incident is not None else None,
        incident_url=incident.get_absolute_url() if incident is not None else "",
        priority=found["priority"],
        urgency=found["urgency"],
    )
