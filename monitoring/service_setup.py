"""A service's paging set-up, as the service page shows it: the setup checklist (integration →
escalation policy → someone reachable → a test alert → the page arriving) and the paging panel
(grouping rule, escalation policy, who would be paged right now).

Monitoring cannot import ``incidents``; the incidents app registers a describer here from its
``AppConfig.ready()`` (``incidents.apps``), as it does for ``monitoring.incident_links``. Without
one (monitoring alone), the checklist stops at the test alert and says why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.urls import reverse

TEST_LABEL = "tocsin_test"


@dataclass(frozen=True)
class Pagee:
    """Someone the first escalation step would page now, and whether a page can reach them."""

    name: str
    reachable: bool
    via: str  # "2 contact methods", "account e-mail", "nothing: no e-mail, no contact method"


@dataclass(frozen=True)
class ServicePaging:
    """What the incidents app says about a service's paging (one describer call)."""

    grouping_rule: str  # "fingerprint", "labels: cluster, alertname", "time window: 5 minutes"
    grouping_help: str  # the rule in a sentence
    settings_url: str  # where the grouping rule and policy are set (admin)
    settings_saved: bool  # False: the service uses the defaults
    policy_name: str = ""
    policy_url: str = ""  # the policy's admin page ("" when none)
    new_policy_url: str = ""  # where a policy is created
    team_policies: int = 0  # policies the team has (one to pick, or one to create first)
    first_step: str = ""  # "after 0 minutes: alice, schedule “Primary”"
    pagees: list[Pagee] = field(default_factory=list)
    contact_url: str = ""  # where a user adds a contact method
    page_delivered: bool = False  # a page about one of its incidents was sent
    page_pending: bool = False  # a page waits in the outbox (or is retrying)
    last_test_incident_url: str = ""  # the incident the latest test alert opened or joined


ServicePagingDescriber = Callable[[Any], ServicePaging]
_describer: ServicePagingDescriber | None = None


def register_paging_describer(describer: ServicePagingDescriber) -> None:
    """Declare how to describe a service's paging; registering again replaces it."""
    global _describer
    _describer = describer


def paging_of(service: Any) -> ServicePaging | None:
    return _describer(service) if _describer is not None else None


@dataclass(frozen=True)
class SetupStep:
    title: str
    done: bool
    detail: str
    url: str
    link_text: str


def checklist(
    service: Any, paging: ServicePaging | None, *, active_integrations: int, tested: bool
) -> list[SetupStep]:
    """The five steps from "alerts have a way in" to "a page arrived", each done or not from
    the data, each linking to where it is done."""
    page = reverse("service", args=[service.team.slug, service.slug])
    steps = [
        SetupStep(
            "Add an integration",
            active_integrations > 0,
            f"{active_integrations} active integration(s): alerts have a way in."
            if active_integrations
            else "Alerts have no way in yet.",
            page + "#add-integration-heading",
            "Add an integration",
        )
    ]
    if paging is None:
        steps.append(
            SetupStep(
                "Choose an escalation policy",
                False,
                "The incidents app is not installed: alerts do not page anybody.",
                page,
                "",
            )
        )
    else:
        reachable = [p for p in paging.pagees if p.reachable]
        steps += [
            SetupStep(
                "Choose an escalation policy",
                bool(paging.policy_name),
                f"Incidents escalate with “{paging.policy_name}”."
                if paging.policy_name
                else "Incidents open but page nobody: the service has no escalation policy.",
                paging.settings_url if paging.team_policies else paging.new_policy_url,
                "Change the policy"
                if paging.policy_name
                else ("Pick a policy" if paging.team_policies else "Create a policy, then pick it"),
            ),
            SetupStep(
                "Someone to page who can be reached",
                bool(reachable),
                ", ".join(f"{p.name} ({p.via})" for p in paging.pagees)
                if paging.pagees
                else "The policy's first step pages nobody right now.",
                paging.contact_url if paging.pagees else paging.policy_url or paging.settings_url,
                "Add a contact method" if paging.pagees else "Add people to the first step",
            ),
        ]
    steps.append(
        SetupStep(
            "Send a test alert",
            tested,
            "A test alert went through the real pipeline."
            if tested
            else "Use “Send test alert” on an integration below.",
            page + "#integrations",
            "Integrations",
        )
    )
    if paging is not None:
        delivered = paging.page_delivered
        steps.append(
            SetupStep(
                "See the page arrive",
                delivered,
                "A page about this service was delivered."
                if delivered
                else (
                    "A page is waiting to be sent (or retrying): check the delivery."
                    if paging.page_pending
                    else "No page sent yet."
                ),
                paging.last_test_incident_url or paging.contact_url,
                "The test incident" if paging.last_test_incident_url else "Your notifications",
            )
        )
    return steps


# -- grouping preview --------------------------------------------------------------------------
@dataclass(frozen=True)
class GroupingPreview:
    """Where an alert would go under the service's grouping rule (nothing is stored)."""

    rule: str
    group_key: str
    why: str  # "joins open incident #12, which has the same group (labels: cluster)"
    incident_id: int | None
    incident_url: str
    priority: str
    urgency: str


# (service, AlertInput) → the preview; at most a few queries.
GroupingPreviewer = Callable[[Any, Any], GroupingPreview]
_previewer: GroupingPreviewer | None = None


def register_grouping_preview(previewer: GroupingPreviewer) -> None:
    global _previewer
    _previewer = previewer


def preview_grouping(service: Any, item: Any) -> GroupingPreview | None:
    return _previewer(service, item) if _previewer is not None else None
