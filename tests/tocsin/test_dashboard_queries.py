"""The dashboard costs a fixed number of queries: more teams, alerts, incidents, checks,
schedules and plans do not add any, on the page or on any tile's partial."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.tocsin.test_dashboard import TILES, logged_in, populate
from tocsin.models import Membership, Role, Team


def queries_of(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def grow(crew, teams: int, n: int) -> None:
    for i in range(teams):
        team = Team.objects.create(name=f"More {i}")
        Membership.objects.create(team=team, user=crew.responder, role=Role.RESPONDER)
        populate(team, f"more{i}", member=crew.responder, n=n)


@pytest.mark.parametrize("user", ["responder", "admin"])
def test_the_page_costs_the_same_queries_with_more_data(crew, user, django_assert_max_num_queries):
    populate(crew.team, "pay", member=crew.responder)
    client = logged_in(crew.by_role(user))
    client.get(reverse("dashboard"))  # the first request of a session may warm caches
    small = queries_of(client, reverse("dashboard"))
    grow(crew, teams=14, n=15)  # more schedules, plans and problems than the tiles list
    with django_assert_max_num_queries(small):
        response = client.get(reverse("dashboard"))
    assert response.status_code == 200
    assert "more13-" in response.content.decode()  # the new data is there


def test_each_tile_costs_the_same_queries_with_more_data(crew, django_assert_max_num_queries):
    populate(crew.team, "pay", member=crew.responder)
    client = logged_in(crew.responder)
    client.get(reverse("dashboard"))
    small = {name: queries_of(client, reverse("dashboard_tile", args=[name])) for name in TILES}
    grow(crew, teams=14, n=15)
    for name in TILES:
        with django_assert_max_num_queries(small[name]):
            assert client.get(reverse("dashboard_tile", args=[name])).status_code == 200


def test_the_page_stays_within_a_small_budget(crew, django_assert_max_num_queries):
    populate(crew.team, "pay", member=crew.responder)
    client = logged_in(crew.responder)
    client.get(reverse("dashboard"))
    with django_assert_max_num_queries(40):
        client.get(reverse("dashboard"))
