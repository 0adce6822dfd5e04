"""The security page for staff (issue #14, "security surfaces"): sign-ins that failed and what
is locked now, second-factor adoption and who must enrol, API tokens about to expire or unused
for 90 days, the latest admin changes — staff only, a fixed number of queries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.conftest import PASSWORD, make_user
from tests.tocsin.two_factor_support import enrol
from tocsin.models import ApiToken, Membership, Role, Team


def fail_sign_ins(username: str, times: int) -> None:
    client = Client()
    for _ in range(times):
        response = client.post("/accounts/login/", {"username": username, "password": "wrong"})
        assert response.status_code == 200  # the form again, with its error


def old_token(user: Any, name: str, days: int, *, used: bool = False) -> ApiToken:
    token, _ = ApiToken.issue(user, name)
    then = timezone.now() - timedelta(days=days)
    ApiToken.objects.filter(pk=token.pk).update(
        created_at=then, last_used_at=then if used else None
    )
    return token


def seed(crew: Any, n: int = 1, first: int = 0) -> None:
    """n of everything the page lists (numbered from ``first``)."""
    for k in range(first, first + n):
        fail_sign_ins(f"nobody-{k}", 2)
        AccessAttempt.objects.create(
            username=f"victim-{k}",
            ip_address=f"192.0.2.{k + 1}",
            user_agent="curl",
            failures_since_start=25,
            attempt_time=timezone.now(),
        )
        ApiToken.issue(crew.responder, f"soon-{k}", expires_at=timezone.now() + timedelta(days=3))
        old_token(crew.viewer, f"stale-{k}", 120)
        LogEntry.objects.log_actions(
            crew.admin.pk, [crew.team], CHANGE, change_message="Changed name.", single_object=True
        )


@pytest.mark.parametrize("role", ["viewer", "responder", "manager"])
def test_only_staff_see_it(crew, api, role):
    assert api(crew.by_role(role)).get("/security/").status_code == 403
    assert api().get("/security/").status_code == 302  # to the login page
    assert api(crew.admin).get("/security/").status_code == 200
    staff = make_user("operator", is_staff=True)
    assert api(staff).get("/security/").status_code == 200


@override_settings(AXES_FAILURE_LIMIT=20)
def test_it_shows_sign_ins_second_factors_tokens_and_admin_changes(crew, api):
    seed(crew)
    fresh, _ = ApiToken.issue(crew.manager, "in use")  # neither expiring nor unused: not listed
    old_token(crew.manager, "used lately", 200, used=False)
    ApiToken.objects.filter(name="used lately").update(last_used_at=timezone.now())
    strict = Team.objects.create(name="Strict", require_two_factor=True)
    Membership.objects.create(team=strict, user=crew.responder, role=Role.RESPONDER)
    Membership.objects.create(team=strict, user=crew.manager, role=Role.MANAGER)
    enrol(crew.manager)
    page = api(crew.admin).get("/security/").content.decode()
    # Sign-ins: the two failures for "nobody-0" from the test client's address; the lockout.
    failed = page.split('id="failed-signins"')[1].split("</table>")[0]
    assert "nobody-0" in failed and "<td>2</td>" in failed and "127.0.0.1" in failed
    locked = page.split('id="locked-signins"')[1].split("</table>")[0]
    assert "victim-0" in locked and "192.0.2.1" in locked and "<td>25</td>" in locked
    # Second factors: one of the active users; the responder of "Strict" must and has none.
    active = get_user_model().objects.filter(is_active=True).count()
    assert f"1 of {active} active users have a second factor" in page
    missing = page.split('id="missing-two-factor"')[1].split("</ul>")[0]
    assert "responder" in missing and "manager" not in missing
    # Tokens.
    expiring = page.split('id="expiring-tokens"')[1].split("</ul>")[0]
    unused = page.split('id="unused-tokens"')[1].split("</ul>")[0]
    assert "soon-0" in expiring and "stale-0" not in expiring
    assert "stale-0" in unused and "never used" in unused
    assert fresh.name not in page and "used lately" not in page
    # Admin changes.
    changes = page.split('id="admin-changes"')[1].split("</table>")[0]
    assert "Payments" in changes and "admin" in changes


@override_settings(AXES_FAILURE_LIMIT=20)
def test_spraying_and_spreading_show_as_the_locks_axes_applies(crew, api):
    """One address trying many names, or many addresses one name: each row under the limit,
    their sum over it (as axes counts), so locked."""
    for k in range(5):
        AccessAttempt.objects.create(
            username=f"sprayed-{k}",
            ip_address="203.0.113.7",
            user_agent="curl",
            failures_since_start=5,
            attempt_time=timezone.now(),
        )
        AccessAttempt.objects.create(
            username="target",
            ip_address=f"198.51.100.{k}",
            user_agent="curl",
            failures_since_start=5,
            attempt_time=timezone.now(),
        )
    page = api(crew.admin).get("/security/").content.decode()
    locked = page.split('id="locked-signins"')[1].split("</table>")[0]
    assert "203.0.113.7" in locked and "<td>target</td>" in locked
    assert "sprayed-0" not in locked and "<td>25</td>" in locked


def test_a_lockout_that_ran_out_is_not_shown(crew, api):
    AccessAttempt.objects.create(
        username="earlier",
        ip_address="192.0.2.9",
        user_agent="curl",
        failures_since_start=50,
        attempt_time=timezone.now() - timedelta(days=1),
    )
    page = api(crew.admin).get("/security/").content.decode()
    assert "earlier" not in page and "Nothing is locked now." in page


def test_its_queries_do_not_grow_with_what_it_lists(crew, api):
    client = api(crew.admin)
    seed(crew, 1)
    client.get("/security/")
    with CaptureQueriesContext(connection) as few:
        assert client.get("/security/").status_code == 200
    seed(crew, 4, first=1)
    with CaptureQueriesContext(connection) as many:
        assert client.get("/security/").status_code == 200
    assert len(many) == len(few)


def test_the_staff_menu_links_it_and_others_do_not_see_the_link(crew, api):
    assert 'href="/security/"' in api(crew.admin).get("/").content.decode()
    assert 'href="/security/"' not in api(crew.manager).get("/").content.decode()


__all__ = ["PASSWORD"]
