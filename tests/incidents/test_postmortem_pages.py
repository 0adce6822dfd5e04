"""The postmortem page, its Markdown download and the postmortem list: roles, forms, queries."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from incidents.lifecycle import services
from incidents.models import ActionItem, Incident, Postmortem
from incidents.postmortems import markdown
from incidents.postmortems import services as postmortems
from tests.incidents.core_support import NOON, fire, settings_for
from tocsin.models import Event

ROLES = ["viewer", "responder", "manager", "outsider", "admin"]
MAY_VIEW = {"viewer", "responder", "manager", "admin"}
MAY_WRITE = {"responder", "manager", "admin"}


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def incident(crew, service) -> Incident:
    fire(service, NOON)
    incident = Incident.objects.get()
    services.add_note(incident, "looking at the dashboards", actor=crew.responder)
    services.resolve(incident, actor=crew.responder)
    return incident


@pytest.fixture
def pm(crew, incident) -> Postmortem:
    return postmortems.create(incident, actor=crew.responder)


def page(incident: Incident) -> str:
    return reverse("postmortem", args=[incident.pk])


def item_url(item: ActionItem, action: str) -> str:
    return reverse("postmortem_item_action", args=[item.postmortem.incident_id, item.pk, action])


def expected_status(role: str, ok: int = 302) -> int:
    return ok if role in MAY_WRITE else (403 if role in MAY_VIEW else 404)


# -- roles ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ROLES)
def test_page_shows_the_postmortem_to_viewers_and_forms_to_responders(crew, pm, role):
    response = logged_in(crew.by_role(role)).get(page(pm.incident))
    if role not in MAY_VIEW:
        assert response.status_code == 404
        return
    html = response.content.decode()
    assert response.status_code == 200
    assert "looking at the dashboards" in html  # the prefilled timeline
    assert ('id="postmortem-form"' in html) == (role in MAY_WRITE)
    assert ('id="add-item-form"' in html) == (role in MAY_WRITE)


@pytest.mark.parametrize("role", ROLES)
def test_starting_from_the_page_needs_the_responder_role(crew, incident, role):
    response = logged_in(crew.by_role(role)).post(page(incident))
    assert response.status_code == expected_status(role)
    assert Postmortem.objects.exists() == (role in MAY_WRITE)


@pytest.mark.parametrize("role", ROLES)
def test_saving_and_action_items_need_the_responder_role(crew, pm, role):
    client = logged_in(crew.by_role(role))
    before = Event.objects.count()
    edit = client.post(
        reverse("postmortem_edit", args=[pm.incident_id]),
        {"summary": "s", "impact": "i", "root_cause": "r", "contributing_factors": "c"},
    )
    add = client.post(
        reverse("postmortem_item_add", args=[pm.incident_id]), {"title": "Add a canary"}
    )
    status = client.post(
        reverse("postmortem_status", args=[pm.incident_id]), {"status": "in_review"}
    )
    assert {edit.status_code, add.status_code, status.status_code} == {expected_status(role)}
    pm.refresh_from_db()
    assert (pm.root_cause == "r") == (role in MAY_WRITE)
    assert ActionItem.objects.exists() == (role in MAY_WRITE)
    assert Event.objects.count() == before + (3 if role in MAY_WRITE else 0)


@pytest.mark.parametrize("role", ROLES)
def test_markdown_download_follows_the_viewer_role(crew, pm, role):
    response = logged_in(crew.by_role(role)).get(reverse("postmortem_md", args=[pm.incident_id]))
    assert response.status_code == (200 if role in MAY_VIEW else 404)
    if response.status_code == 200:
        assert response["Content-Type"] == "text/markdown; charset=utf-8"
        assert response["Content-Disposition"] == (
            f'attachment; filename="{markdown.markdown_filename(pm)}"'
        )
        assert "## Root cause" in response.content.decode()


def test_incident_page_links_to_write_or_read_the_postmortem(crew, incident):
    html = logged_in(crew.responder).get(incident.get_absolute_url()).content.decode()
    assert "Write postmortem" in html
    assert (
        "data-postmortem-link"
        not in logged_in(crew.viewer).get(incident.get_absolute_url()).content.decode()
    )
    postmortems.create(incident, actor=crew.responder)
    html = logged_in(crew.viewer).get(incident.get_absolute_url()).content.decode()
    assert f'href="{page(incident)}" data-postmortem-link' in html
    assert "Started the postmortem" in html  # the event shows on the incident's timeline


# -- forms ---------------------------------------------------------------------------------------
def test_editing_the_timeline_text_trims_and_annotates(crew, pm):
    lines = postmortems.timeline_to_text(pm.timeline).splitlines()
    later = (timezone.now() + timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S")
    kept = [lines[0] + " (from Alertmanager)", f"{later} Rolled back"]
    response = logged_in(crew.responder).post(
        reverse("postmortem_edit", args=[pm.incident_id]),
        {"summary": "Checkout was slow", "timeline": "\n".join(kept)},
    )
    assert response.status_code == 302
    pm.refresh_from_db()
    assert [r["text"] for r in pm.timeline][-1] == "Rolled back"
    assert pm.timeline[0]["text"].endswith("(from Alertmanager)")
    assert pm.summary == "Checkout was slow"


def test_bad_timeline_line_is_a_form_error_and_nothing_changes(crew, pm):
    before = Postmortem.objects.values().get()
    response = logged_in(crew.responder).post(
        reverse("postmortem_edit", args=[pm.incident_id]),
        {"summary": "changed", "timeline": "sometime yesterday: it broke"},
    )
    assert response.status_code == 400
    assert "line 1" in response.content.decode()
    assert "changed" in response.content.decode()  # the input is kept
    assert Postmortem.objects.values().get() == before


def test_too_long_section_is_a_form_error(crew, pm):
    response = logged_in(crew.responder).post(
        reverse("postmortem_edit", args=[pm.incident_id]),
        {"impact": "x" * (postmortems.MAX_TEXT + 1)},
    )
    assert response.status_code == 400
    assert response.context["form"].errors["impact"]


@pytest.mark.parametrize(
    "data, field",
    [
        ({"title": "x", "owner": "outsider"}, "owner"),
        ({"title": "x", "due_date": "soon"}, "due_date"),
        ({"title": ""}, "title"),
        ({"title": "x", "tracker_url": "javascript:alert(1)"}, "tracker_url"),
    ],
)
def test_bad_action_item_is_a_form_error_and_nothing_changes(crew, pm, data, field):
    if data.get("owner") == "outsider":
        data = {**data, "owner": str(crew.outsider.pk)}
    client = logged_in(crew.responder)
    before = Event.objects.count()
    response = client.post(reverse("postmortem_item_add", args=[pm.incident_id]), data)
    assert response.status_code == 400
    assert response.context["item_form"].errors[field]
    assert not ActionItem.objects.exists() and Event.objects.count() == before


def test_action_item_done_reopen_edit_and_remove(crew, pm):
    client = logged_in(crew.responder)
    item = postmortems.add_action_item(pm, actor=crew.responder, title="Add a canary")
    assert client.post(item_url(item, "done")).status_code == 302
    item.refresh_from_db()
    assert item.status == "done"
    assert client.post(item_url(item, "reopen")).status_code == 302
    response = client.post(
        item_url(item, "edit"),
        {
            f"item-{item.pk}-title": "Add two canaries",
            f"item-{item.pk}-owner": str(crew.viewer.pk),
            f"item-{item.pk}-due_date": "2025-02-01",
        },
    )
    assert response.status_code == 302
    item.refresh_from_db()
    assert (item.title, item.owner, str(item.due_date), item.status) == (
        "Add two canaries",
        crew.viewer,
        "2025-02-01",
        "open",
    )
    response = client.post(
        item_url(item, "edit"), {f"item-{item.pk}-title": "x", f"item-{item.pk}-due_date": "nope"}
    )
    assert response.status_code == 400
    item.refresh_from_db()
    assert item.title == "Add two canaries"
    assert client.post(item_url(item, "delete")).status_code == 302
    assert not ActionItem.objects.exists()


def test_overdue_open_items_are_highlighted(crew, pm):
    yesterday = timezone.now().date() - timedelta(days=1)
    late = postmortems.add_action_item(pm, actor=crew.responder, title="late", due_date=yesterday)
    done = postmortems.add_action_item(pm, actor=crew.responder, title="done", due_date=yesterday)
    postmortems.complete_action_item(done, actor=crew.responder)
    html = logged_in(crew.viewer).get(page(pm.incident)).content.decode()
    assert f'id="action-item-{late.pk}" data-action-item="{late.pk}" data-overdue' in html
    assert f'id="action-item-{done.pk}" data-action-item="{done.pk}">' in html


def test_published_postmortem_shows_no_edit_form_until_reopened(crew, pm):
    client = logged_in(crew.responder)
    client.post(reverse("postmortem_status", args=[pm.incident_id]), {"status": "published"})
    html = client.get(page(pm.incident)).content.decode()
    assert 'id="postmortem-form"' not in html and "Reopen for editing" in html
    response = client.post(reverse("postmortem_edit", args=[pm.incident_id]), {"summary": "x"})
    assert response.status_code == 400
    pm.refresh_from_db()
    assert pm.summary != "x"


def test_unknown_status_is_refused(crew, pm):
    response = logged_in(crew.responder).post(
        reverse("postmortem_status", args=[pm.incident_id]), {"status": "archived"}
    )
    assert response.status_code == 400
    pm.refresh_from_db()
    assert pm.status == "draft"


# -- the list and query counts -------------------------------------------------------------------
def test_list_filters_my_open_action_items(crew, service, pm):
    fire(service, NOON, alertname="Other")
    other = postmortems.create(Incident.objects.get(status="triggered"), actor=crew.responder)
    mine = postmortems.add_action_item(pm, actor=crew.responder, title="mine", owner=crew.viewer)
    postmortems.add_action_item(other, actor=crew.responder, title="theirs", owner=crew.manager)
    client = logged_in(crew.viewer)
    html = client.get(reverse("postmortems")).content.decode()
    assert f'data-postmortem="{pm.pk}"' in html and f'data-postmortem="{other.pk}"' in html
    assert f'data-my-item="{mine.pk}"' in html
    html = client.get(reverse("postmortems") + "?mine=1").content.decode()
    assert f'data-postmortem="{pm.pk}"' in html and f'data-postmortem="{other.pk}"' not in html
    assert (
        logged_in(crew.outsider)
        .get(reverse("postmortems"))
        .content.decode()
        .count("data-postmortem=")
        == 0
    )


def test_page_query_count_does_not_grow_with_items(crew, pm, django_assert_max_num_queries):
    for n in range(30):
        postmortems.add_action_item(
            pm, actor=crew.responder, title=f"item {n}", owner=crew.viewer, due_date="2025-02-01"
        )
    client = logged_in(crew.responder)
    with django_assert_max_num_queries(9):
        response = client.get(page(pm.incident))
    assert response.content.decode().count("data-action-item=") == 30
    with django_assert_max_num_queries(8):
        client.get(reverse("postmortem_items", args=[pm.incident_id]))


def test_list_query_count_is_bounded(crew, service, django_assert_max_num_queries):
    settings_for(service, storm_threshold=0)  # an incident per alert, however many at once
    for n in range(40):
        fire(service, NOON, alertname=f"A{n}")
    for incident in Incident.objects.all():
        pm = postmortems.create(incident, actor=crew.responder)
        postmortems.add_action_item(pm, actor=crew.responder, title="x", owner=crew.responder)
    client = logged_in(crew.responder)
    with django_assert_max_num_queries(7):
        response = client.get(reverse("postmortems"))
    assert response.content.decode().count("data-postmortem=") == 40
    assert response.content.decode().count("data-my-item=") == 40


# -- admin ---------------------------------------------------------------------------------------
def _admin_form(pm: Postmortem, items: list[dict] | None = None, **fields) -> dict:
    items = items or []
    data = {
        "status": pm.status,
        "summary": pm.summary,
        "impact": pm.impact,
        "root_cause": pm.root_cause,
        "contributing_factors": pm.contributing_factors,
        "timeline": json.dumps(pm.timeline),
        "action_items-TOTAL_FORMS": len(items),
        "action_items-INITIAL_FORMS": 0,
        "action_items-MIN_NUM_FORMS": 0,
        "action_items-MAX_NUM_FORMS": 1000,
        **fields,
    }
    for n, item in enumerate(items):
        data.update({f"action_items-{n}-{k}": v for k, v in item.items()})
    return data


def test_manager_edits_a_postmortem_in_the_admin_through_the_services(crew, pm):
    change = reverse("admin:incidents_postmortem_change", args=[pm.pk])
    data = _admin_form(
        pm,
        [
            {
                "title": "Add a canary",
                "owner": crew.viewer.pk,
                "due_date": "2025-02-01",
                "status": "open",
            }
        ],
        root_cause="Config push",
    )
    response = logged_in(crew.manager).post(change, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    pm.refresh_from_db()
    assert pm.root_cause == "Config push"
    assert [(i.title, i.owner) for i in pm.action_items.all()] == [("Add a canary", crew.viewer)]
    kinds = list(
        Event.objects.filter(kind__startswith="postmortem.").values_list("kind", flat=True)
    )
    assert "postmortem.updated" in kinds and "postmortem.action_item_added" in kinds


def test_admin_refuses_an_owner_from_another_team_and_changes_nothing(crew, pm):
    change = reverse("admin:incidents_postmortem_change", args=[pm.pk])
    data = _admin_form(
        pm, [{"title": "x", "owner": crew.outsider.pk, "status": "open"}], root_cause="changed"
    )
    client = logged_in(crew.manager)
    before = Event.objects.count()
    response = client.post(change, data)
    assert response.status_code == 200
    assert "not a member" in response.content.decode()
    pm.refresh_from_db()
    assert pm.root_cause == "" and not ActionItem.objects.exists()
    assert Event.objects.count() == before


@pytest.mark.parametrize("role", ["viewer", "responder", "outsider"])
def test_admin_hides_postmortems_from_non_managers_of_the_team(crew, pm, role):
    client = logged_in(crew.by_role(role))
    response = client.get(reverse("admin:incidents_postmortem_change", args=[pm.pk]))
    listing = client.get(reverse("admin:incidents_postmortem_changelist"))
    if role == "outsider":  # a manager elsewhere: the row is out of scope
        assert response.status_code == 302 and response["Location"] == reverse("admin:index")
        assert listing.status_code == 200 and listing.context["cl"].result_count == 0
    else:  # no admin at all for non-managers
        assert response.status_code == 302 and reverse("admin:login") in response["Location"]
        assert listing.status_code == 302
