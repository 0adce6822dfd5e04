"""The admin's user search shows a manager the people of the teams they manage, not everyone (#14).

The member picker (the admin's autocomplete) must still let a manager add a colleague from
outside their teams: by exact username or e-mail address, never by listing. Django's user admin
itself is for superusers; a staff account given user permissions sees its managed teams' people.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from tests.conftest import make_user
from tocsin.models import Membership, Role


def pick(user: Any, term: str) -> set[str]:
    client = Client()
    client.force_login(user)
    response = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "tocsin", "model_name": "membership", "field_name": "user", "term": term},
    )
    assert response.status_code == 200, response.content
    return {r["text"] for r in response.json()["results"]}


def test_a_manager_searches_only_the_people_of_their_teams(crew):
    make_user("searchable-stranger")  # in no team
    # crew.outsider manages another team: not a colleague of crew.manager.
    assert pick(crew.manager, "e") >= {"viewer", "responder", "manager"}
    assert "outsider" not in pick(crew.manager, "e")
    assert "searchable-stranger" not in pick(crew.manager, "stranger")
    assert pick(crew.manager, "") == {"viewer", "responder", "manager"}


def test_someone_else_is_found_by_exact_username_or_address_only(crew):
    make_user("searchable-stranger")
    assert pick(crew.manager, "searchable-stranger") == {"searchable-stranger"}
    assert pick(crew.manager, "SEARCHABLE-STRANGER@example.org") == {"searchable-stranger"}
    assert pick(crew.manager, "searchable-strange") == set()
    assert pick(crew.manager, "@example.org") == {"viewer", "responder", "manager"}


def test_a_superuser_searches_everyone(crew):
    make_user("searchable-stranger")
    assert "searchable-stranger" in pick(crew.admin, "stranger")
    assert "outsider" in pick(crew.admin, "out")


def test_a_staff_account_with_user_permissions_sees_only_its_teams_people(crew):
    staff = crew.manager
    staff.is_staff = True
    staff.save()
    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_user", "change_user"])
    )
    make_user("searchable-stranger")
    client = Client()
    client.force_login(staff)

    listed = client.get("/admin/auth/user/", {"q": "e"})
    assert listed.status_code == 200
    text = listed.content.decode()
    assert "responder" in text and "outsider" not in text
    exact = client.get("/admin/auth/user/", {"q": "searchable-stranger"})
    assert "0 results" in exact.content.decode()  # exact matches are the picker's exception only
    stranger = Membership.objects.filter(user=crew.outsider).first().user
    assert client.get(f"/admin/auth/user/{stranger.pk}/change/").status_code in (302, 404)
    # A colleague added to a team the account manages becomes findable.
    Membership.objects.create(team=crew.team, user=crew.outsider, role=Role.VIEWER)
    assert "outsider" in client.get("/admin/auth/user/", {"q": "out"}).content.decode()
