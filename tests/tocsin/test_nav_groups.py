"""The grouped navigation: each page marks its group and its own link (no JS needed)."""

from __future__ import annotations

import re

import pytest
from django.test import Client


@pytest.mark.parametrize(
    ("path", "group", "link"),
    [
        ("/alerts/", "Alerts", "Alerts"),
        ("/services/", "Alerts", "Services"),
        ("/silences/", "Alerts", "Silences"),
        ("/incidents/", "Incidents", "Incidents"),
        ("/postmortems/", "Incidents", "Postmortems"),
        ("/reports/", "Incidents", "Reports"),
        ("/probes/", "Monitoring", "Probes"),
        ("/slos/", "Monitoring", "SLOs"),
        ("/backups/", "Monitoring", "Backups"),
        ("/teams/", None, "Teams"),
    ],
)
def test_the_current_group_and_link_are_marked(crew, path, group, link):
    client = Client()
    client.force_login(crew.viewer)
    response = client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    nav = html.split('<nav class="site-nav"', 1)[1].split("</nav>", 1)[0]
    marked = re.findall(r'<details class="nav-group" data-current>\s*<summary>(\w+)', nav)
    assert marked == ([group] if group else [])
    assert re.findall(r'aria-current="page">([^<]+)<', nav) == [link]
    # Three groups and four plain links: the header fits one row on a laptop.
    assert nav.count('class="nav-group"') == 3
