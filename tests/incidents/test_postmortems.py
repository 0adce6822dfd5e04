"""Postmortems: prefilled from the incident's timeline, edited, published, exported as Markdown."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from incidents.escalation import engine as escalation
from incidents.lifecycle import services, timeline
from incidents.models import ActionItem, Incident, Postmortem
from incidents.postmortems import markdown, prefill
from incidents.postmortems import services as postmortems
from tests.conftest import make_user
from tests.incidents.core_support import NOON, fire, policy, settings_for
from tocsin.models import Event
from tocsin.services import ServiceError


@pytest.fixture
def incident(crew, service) -> Incident:
    """An incident with a full history: trigger, page, second alert, ack, note, update, resolve."""
    step = {"delay_minutes": 0, "user_ids": [crew.responder.pk]}
    settings_for(
        service,
        grouping_mode="labels",
        group_labels=["cluster"],
        escalation_policy=policy(crew.team, step),
    )
    fire(service, NOON, alertname="HighLatency", cluster="eu")
    incident = Incident.objects.get()
    escalation.advance_escalations(NOON + timedelta(minutes=1))
    fire(service, NOON, alertname="ErrorRate", cluster="eu")
    services.acknowledge(incident, actor=crew.responder)
    services.add_note(incident, "Rolled back\nthe deploy", actor=crew.responder)
    services.post_status_update(incident, "Checkout is slow for EU users", actor=crew.manager)
    services.resolve(incident, actor=crew.responder, reason="rollback done")
    incident.refresh_from_db()
    return incident


def pm_events(incident: Incident) -> list[Event]:
    return [e for e in timeline.for_incident(incident) if e.kind.startswith("postmortem.")]


# -- prefill -----------------------------------------------------------------------------------
def test_prefill_lists_the_incidents_key_events_in_order(crew, incident):
    pm = postmortems.create(incident, actor=crew.responder)

    key = [
        e
        for e in timeline.for_incident(incident)
        if e.kind in prefill.KEY_KINDS and not e.kind.startswith("postmortem.")
    ]
    assert [r["event_id"] for r in pm.timeline] == [e.pk for e in key]
    assert [r["kind"] for r in pm.timeline] == [
        "incident.triggered",
        "incident.escalated",
        "incident.alert_added",
        "incident.acknowledged",
        "incident.note",
        "incident.status_update",
        "incident.resolved",
    ]
    texts = [r["text"] for r in pm.timeline]
    assert texts[0] == "Triggered with priority P1: “HighLatency”"
    assert texts[1] == "Escalation step 1 paged responder"
    assert texts[2] == "Alert “ErrorRate” joined the incident"
    assert texts[3] == "Acknowledged by responder"
    assert texts[4] == "Note by responder: Rolled back the deploy"
    assert texts[5] == "Status update by manager: Checkout is slow for EU users"
    assert texts[6] == "Resolved by responder: rollback done"
    first = Event.objects.get(pk=pm.timeline[0]["event_id"])
    assert pm.timeline[0]["at"] == first.created_at.replace(microsecond=0).isoformat().replace(
        "+00:00", "Z"
    )


def test_prefill_summarises_the_incident_and_its_impact(crew, incident):
    pm = postmortems.create(incident, actor=crew.responder)

    assert incident.title in pm.summary and "Checkout API" in pm.summary
    assert "resolved" in pm.summary
    assert "Checkout API was affected for" in pm.impact and "2 alerts" in pm.impact
    assert pm.root_cause == "" and pm.contributing_factors == ""
    assert pm.author == crew.responder and pm.team == crew.team
    assert pm.status == "draft"


def test_a_second_postmortem_for_the_same_incident_is_refused(crew, incident):
    postmortems.create(incident, actor=crew.responder)
    with pytest.raises(ServiceError) as caught:
        postmortems.create(incident, actor=crew.manager)
    assert caught.value.code == "duplicate"
    assert Postmortem.objects.count() == 1


def test_drafting_is_allowed_while_the_incident_is_open_but_publishing_is_not(crew, service):
    fire(service, NOON)
    open_incident = Incident.objects.get()
    pm = postmortems.create(open_incident, actor=crew.responder)
    assert "still open" in pm.summary

    with pytest.raises(ServiceError) as caught:
        postmortems.publish(pm, actor=crew.responder)
    assert caught.value.field == "status"
    pm.refresh_from_db()
    assert pm.status == "draft" and pm.published_at is None


# -- editing and status ------------------------------------------------------------------------
def test_every_change_records_a_postmortem_event_on_the_incident_timeline(crew, incident):
    pm = postmortems.create(incident, actor=crew.responder)
    postmortems.update(pm, actor=crew.responder, root_cause="A bad config push")
    postmortems.set_status(pm, "in_review", actor=crew.responder)
    postmortems.publish(pm, actor=crew.manager)
    item = postmortems.add_action_item(
        pm, actor=crew.responder, title="Add a canary", owner=crew.viewer, due_date="2025-02-01"
    )
    postmortems.update_action_item(item, actor=crew.responder, due_date=date(2025, 2, 8))
    postmortems.complete_action_item(item, actor=crew.viewer)
    postmortems.delete_action_item(item, actor=crew.manager)

    events = pm_events(incident)
    assert [e.kind for e in events] == [
        "postmortem.created",
        "postmortem.updated",
        "postmortem.submitted",
        "postmortem.published",
        "postmortem.action_item_added",
        "postmortem.action_item_updated",
        "postmortem.action_item_done",
        "postmortem.action_item_deleted",
    ]
    assert all(e.team_id == crew.team.pk and e.subject_type == "incident" for e in events)
    assert events[1].payload["changed"] == ["root_cause"]
    assert events[3].payload["status"] == ["in_review", "published"]
    assert events[4].payload["owner"] == "viewer" and events[4].payload["due_date"] == "2025-02-01"
    assert events[6].actor == crew.viewer
    sentences = [timeline.describe(e, {}) for e in events]
    assert sentences[3] == "Published the postmortem"
    assert sentences[4] == "Action item “Add a canary” added, owner viewer, due 2025-02-01"


def test_an_update_that_changes_nothing_records_nothing(crew, incident):
    pm = postmortems.create(incident, actor=crew.responder)
    postmortems.update(pm, actor=crew.responder, summary=pm.summary, timeline=pm.timeline)
    assert [e.kind for e in pm_events(incident)] == ["postmortem.created"]


def test_published_postmortem_is_read_only_until_reopened(crew, incident):
    pm = postmortems.create(incident, actor=crew.responder)
    postmortems.publish(pm, actor=crew.responder)
    with pytest.raises(ServiceError) as caught:
        postmortems.update(pm, actor=crew.responder, summary="rewritten")
    assert caught.value.code == "published"
    pm.refresh_from_db()
    assert "rewritten" not in pm.summary

    postmortems.set_status(pm, "draft", actor=crew.responder)
    postmortems.update(pm, actor=crew.responder, summary="rewritten")
    pm.refresh_from_db()
    assert pm.summary == "rewritten" and pm.published_at is None
    assert "postmortem.reopened" in [e.kind for e in pm_events(incident)]


def test_action_items_stay_workable_after_publishing(crew, incident):
    pm = postmortems.create(incident, actor=crew.responder)
    item = postmortems.add_action_item(pm, actor=crew.responder, title="Alert on p99")
    postmortems.publish(pm, actor=crew.responder)
    postmortems.complete_action_item(item, actor=crew.responder)
    item.refresh_from_db()
    assert item.status == "done" and item.done_at is not None


@pytest.mark.parametrize(
    "status, code", [("bogus", "invalid"), ("", "invalid"), ("archived", "invalid")]
)
def test_unknown_status_is_refused(crew, incident, status, code):
    pm = postmortems.create(incident, actor=crew.responder)
    with pytest.raises(ServiceError) as caught:
        postmortems.set_status(pm, status, actor=crew.responder)
    assert (caught.value.field, caught.value.code) == ("status", code)


def test_timeline_rows_are_validated_and_sorted(crew, incident):
    pm = postmortems.create(incident, actor=crew.responder)
    rows = [
        {"at": "2025-01-15T12:30:00Z", "text": "Rollback finished"},
        {"at": "2025-01-15 12:05:00", "text": "Deploy   went\nout", "kind": "custom"},
    ]
    postmortems.update(pm, actor=crew.responder, timeline=rows)
    pm.refresh_from_db()
    assert pm.timeline == [
        {
            "at": "2025-01-15T12:05:00Z",
            "text": "Deploy went out",
            "event_id": None,
            "kind": "custom",
        },
        {"at": "2025-01-15T12:30:00Z", "text": "Rollback finished", "event_id": None, "kind": ""},
    ]
    for bad, field in [
        ([{"at": "yesterday", "text": "x"}], "timeline.0.at"),
        ([{"at": "2025-01-15T12:00:00Z", "text": "  "}], "timeline.0.text"),
        ([{"at": "2025-01-15T12:00:00Z", "text": "x" * 2001}], "timeline.0.text"),
        ([{"at": "2025-01-15T12:00:00Z", "text": "x", "colour": "red"}], "timeline.0"),
        ("not a list", "timeline"),
    ]:
        with pytest.raises(ServiceError) as caught:
            postmortems.update(pm, actor=crew.responder, timeline=bad)
        assert caught.value.field == field
    pm.refresh_from_db()
    assert len(pm.timeline) == 2


def test_too_long_text_is_refused_and_nothing_changes(crew, incident):
    pm = postmortems.create(incident, actor=crew.responder)
    with pytest.raises(ServiceError) as caught:
        postmortems.update(pm, actor=crew.responder, impact="x" * (postmortems.MAX_TEXT + 1))
    assert caught.value.field == "impact"
    pm.refresh_from_db()
    assert "affected" in pm.impact


def test_timeline_text_round_trip_keeps_event_links(crew, incident):
    pm = postmortems.create(incident, actor=crew.responder)
    text = postmortems.timeline_to_text(pm.timeline)
    lines = text.splitlines()
    edited = "\n".join(
        [lines[0], lines[3] + " (on the second page)", "2025-01-15 12:20:00 Our note"]
    )
    rows = postmortems.timeline_from_text(edited, pm.timeline)
    assert rows[0]["event_id"] == pm.timeline[0]["event_id"]
    assert rows[1]["event_id"] is None and rows[1]["text"].endswith("(on the second page)")
    assert rows[2] == {
        "at": "2025-01-15T12:20:00Z",
        "text": "Our note",
        "event_id": None,
        "kind": "",
    }
    with pytest.raises(ServiceError) as caught:
        postmortems.timeline_from_text("no time here", pm.timeline)
    assert "line 1" in caught.value.message


# -- action items ------------------------------------------------------------------------------
def test_action_item_owner_must_be_on_the_incidents_team(crew, incident):
    pm = postmortems.create(incident, actor=crew.responder)
    stranger = make_user("stranger")
    for owner in (crew.outsider, stranger):
        with pytest.raises(ServiceError) as caught:
            postmortems.add_action_item(pm, actor=crew.responder, title="x", owner=owner)
        assert (caught.value.field, caught.value.code) == ("owner", "not_member")
    assert not ActionItem.objects.exists()
    item = postmortems.add_action_item(pm, actor=crew.responder, title="x", owner=crew.viewer)
    with pytest.raises(ServiceError):
        postmortems.update_action_item(item, actor=crew.responder, owner=crew.outsider)
    item.refresh_from_db()
    assert item.owner == crew.viewer


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"due_date": "next tuesday"}, "due_date"),
        ({"due_date": "2025-02-30"}, "due_date"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 301}, "title"),
        ({"tracker_url": "javascript:alert(1)"}, "tracker_url"),
        ({"status": "maybe"}, "status"),
        ({"priority": "high"}, "priority"),
    ],
)
def test_bad_action_item_input_is_refused_with_the_field(crew, incident, changes, field):
    pm = postmortems.create(incident, actor=crew.responder)
    item = postmortems.add_action_item(pm, actor=crew.responder, title="Keep me")
    before = list(Event.objects.values_list("id", flat=True))
    with pytest.raises(ServiceError) as caught:
        postmortems.update_action_item(item, actor=crew.responder, **changes)
    assert caught.value.field == field
    item.refresh_from_db()
    assert item.title == "Keep me" and item.due_date is None and item.status == "open"
    assert list(Event.objects.values_list("id", flat=True)) == before


def test_action_items_keep_the_order_they_were_added_in(crew, incident):
    pm = postmortems.create(incident, actor=crew.responder)
    for title in ("first", "second", "third"):
        postmortems.add_action_item(pm, actor=crew.responder, title=title)
    assert [i.title for i in pm.action_items.all()] == ["first", "second", "third"]


def test_overdue_means_open_and_past_its_due_date(crew, incident):
    pm = postmortems.create(incident, actor=crew.responder)
    item = postmortems.add_action_item(pm, actor=crew.responder, title="x", due_date="2025-01-20")
    assert item.is_overdue(date(2025, 1, 21)) and not item.is_overdue(date(2025, 1, 20))
    postmortems.complete_action_item(item, actor=crew.responder)
    assert not item.is_overdue(date(2025, 1, 21))


# -- Markdown ----------------------------------------------------------------------------------
def test_markdown_has_every_section_the_timeline_and_the_action_items(crew, incident):
    pm = postmortems.create(incident, actor=crew.responder)
    postmortems.update(
        pm,
        actor=crew.responder,
        root_cause="A config push **disabled** the cache.",
        contributing_factors="- no canary\n- alert too late",
    )
    postmortems.add_action_item(
        pm, actor=crew.responder, title="Add a canary", owner=crew.viewer, due_date="2025-02-01"
    )
    postmortems.add_action_item(
        pm, actor=crew.responder, title="Page sooner", tracker_url="https://tracker.example/T-1"
    )

    md = markdown.render_markdown(pm)

    assert md.startswith(f"# Postmortem: #{incident.pk} ")
    positions = [
        md.index(h)
        for h in (
            "## Summary",
            "## Impact",
            "## Root cause",
            "## Contributing factors",
            "## Timeline",
            "## Action items",
        )
    ]
    assert positions == sorted(positions)
    assert "A config push **disabled** the cache." in md
    assert "- no canary\n- alert too late" in md
    assert "| Triggered with priority P1: “HighLatency” |" in md
    for row in pm.timeline:
        assert markdown.md_inline(row["text"]) in md
    assert "| 1 | Add a canary | viewer | 2025-02-01 | open | — |" in md
    assert "| 2 | Page sooner | _unassigned_ | — | open | <https://tracker.example/T-1> |" in md
    assert "- **Service:** Checkout API" in md and "- **Author:** responder" in md


def test_markdown_survives_tricky_text(crew, incident):
    pm = postmortems.create(incident, actor=crew.responder)
    postmortems.update(
        pm,
        actor=crew.responder,
        summary="<script>alert(1)</script> and a | pipe",
        timeline=[
            {"at": "2025-01-15T12:00:00Z", "text": "grep 'a|b' C:\\ <b>bold</b>"},
        ],
    )
    owner = make_user("pipe|user")
    crew.team.memberships.create(user=owner, role="viewer")
    postmortems.add_action_item(
        pm,
        actor=crew.responder,
        title="Fix `x | y` path ending in \\",
        owner=owner,
        tracker_url="https://t.example/a|b<c>?q=1&r=2",
    )

    md = markdown.render_markdown(pm)
    lines = md.splitlines()

    assert "<script>" not in md and "&lt;script&gt;alert(1)&lt;/script&gt; and a | pipe" in md
    timeline_row = next(line for line in lines if line.startswith("| 2025-01-15 12:00:00 |"))
    assert timeline_row == "| 2025-01-15 12:00:00 | grep 'a\\|b' C:\\\\ &lt;b&gt;bold&lt;/b&gt; |"
    item_row = next(line for line in lines if line.startswith("| 1 |"))
    # Exactly the table's 7 delimiters survive unescaped: no cell was split.
    unescaped = item_row.replace("\\\\", "").replace("\\|", "")
    assert unescaped.count("|") == 7
    assert "pipe\\|user" in item_row
    assert "<https://t.example/a%7Cb%3Cc%3E?q=1&r=2>" in item_row


def test_markdown_filename_is_safe(crew, service):
    fire(service, NOON, alertname="x")
    incident = Incident.objects.get()
    Incident.objects.filter(pk=incident.pk).update(title='Disk "full" / on ../../etc\r\nX: ä')
    incident.refresh_from_db()
    pm = postmortems.create(incident, actor=crew.responder)
    name = markdown.markdown_filename(pm)
    assert name == f"postmortem-{incident.pk}-disk-full-on-etc-x-a.md" or name.startswith(
        f"postmortem-{incident.pk}-"
    )
    assert all(c.isalnum() or c in "-." for c in name)
